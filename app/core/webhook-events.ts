// What the webhooks are told, and when: the event each history entry makes (a message, a change to
// one, a change to a room), and the events that are not entries. The core makes them; where they go
// (which endpoints, signed how, tried how often) is the sink's business (app/webhooks/).
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Message, MessageSchema, RoomChangeKind, RoomSchema, UpdateKind } from "../gen/chat/v1/chat_pb.ts";
import type { OutboxRow } from "../engine/engine.ts";

export const WEBHOOK_EVENTS = [
  "message.created",
  "message.edited",
  "message.deleted",
  "member.joined",
  "member.left",
  "member.banned",
  "room.created",
  "room.updated",
  "room.deleted",
  "user.offline",
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Where events go: the deliveries of one event, to each endpoint that wants it. */
export interface EventSink {
  wants(type: WebhookEvent): boolean;
  rows(type: WebhookEvent, data: Record<string, unknown>): OutboxRow[];
}

const json = (m: Message) => toJson(MessageSchema, m) as Record<string, unknown>;

/** The type of event an entry makes, if any: cheap, so that nothing more is done for an event nobody wants. */
export function entryType(m: Message): WebhookEvent | undefined {
  const u = m.update;
  if (u) return u.kind === UpdateKind.EDITED ? "message.edited" : u.kind === UpdateKind.DELETED ? "message.deleted" : undefined;
  const c = m.change;
  if (!c) return "message.created";
  return CHANGE_EVENTS[c.kind];
}

const CHANGE_EVENTS: Partial<Record<RoomChangeKind, WebhookEvent>> = {
  [RoomChangeKind.MEMBER_ADDED]: "member.joined",
  [RoomChangeKind.MEMBER_REMOVED]: "member.left",
  [RoomChangeKind.BANNED]: "member.banned",
  [RoomChangeKind.CREATED]: "room.created",
  [RoomChangeKind.UPDATED]: "room.updated",
};

/**
 * The event an entry makes, if any. A message's carries the room's members who had no stream in
 * it when it was stored (`offline`, for push notifications); a deleted message's carries no text.
 */
export function entryEvent(m: Message, offline: string[] | null = []): { type: WebhookEvent; data: Record<string, unknown> } | undefined {
  const u = m.update;
  if (u) {
    if (u.kind === UpdateKind.EDITED && u.message) return { type: "message.edited", data: { room: m.room, by: m.from, message: json(u.message) } };
    if (u.kind === UpdateKind.DELETED) return { type: "message.deleted", data: { room: m.room, by: m.from, seq: String(u.targetSeq) } };
    return undefined;
  }
  const c = m.change;
  if (!c) return { type: "message.created", data: { room: m.room, message: json(m), offlineMembers: offline } };
  const room = c.room && (toJson(RoomSchema, c.room) as Record<string, unknown>);
  switch (c.kind) {
    case RoomChangeKind.MEMBER_ADDED:
      return { type: "member.joined", data: { room: m.room, user: c.user, by: m.from } };
    case RoomChangeKind.MEMBER_REMOVED:
      return { type: "member.left", data: { room: m.room, user: c.user, by: m.from } };
    case RoomChangeKind.BANNED:
      return {
        type: "member.banned",
        data: { room: m.room, user: c.user, by: m.from, reason: c.reason, until: c.until ? timestampDate(c.until).toISOString() : null },
      };
    case RoomChangeKind.CREATED:
      return { type: "room.created", data: { room, by: m.from } };
    case RoomChangeKind.UPDATED:
      return { type: "room.updated", data: { room, by: m.from } };
    default:
      return undefined;
  }
}
