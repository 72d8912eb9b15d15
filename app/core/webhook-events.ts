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
 * The data of the event an entry makes (its type is entryType's). A message's carries the room's
 * members who had no stream in it when it was stored (`offline`, for push notifications); a deleted
 * message's carries no text.
 */
export function eventData(type: WebhookEvent, m: Message, offline: string[] | null = []): Record<string, unknown> {
  const c = m.change;
  switch (type) {
    case "message.created":
      return { room: m.room, message: json(m), offlineMembers: offline };
    case "message.edited":
      return { room: m.room, by: m.from, message: m.update?.message && json(m.update.message) };
    case "message.deleted":
      return { room: m.room, by: m.from, seq: String(m.update?.targetSeq ?? 0n) };
    case "member.joined":
    case "member.left":
      return { room: m.room, user: c?.user, by: m.from };
    case "member.banned":
      return { room: m.room, user: c?.user, by: m.from, reason: c?.reason, until: c?.until ? timestampDate(c.until).toISOString() : null };
    default:
      // room.created, room.updated: the room after the change.
      return { room: c?.room && (toJson(RoomSchema, c.room) as Record<string, unknown>), by: m.from };
  }
}
