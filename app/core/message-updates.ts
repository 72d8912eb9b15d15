// Who may change a message, and how: the rules of edits, deletes and reactions, as the change
// functions the history stores apply (engine.ts: UpdateDraft.change) while the message cannot
// change under them. Pure functions of the message as stored, the actor and the room's record.
import { clone } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MessageSchema, ReactionSchema, type Message } from "../gen/chat/v1/chat_pb.ts";
import type { RoomRecord } from "../engine/engine.ts";
import { MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_MESSAGE, MAX_REACTIONS_PER_USER } from "../rules/reactions.ts";
import type { Actor } from "./room-rules.ts";
import { create } from "@bufbuild/protobuf";

/** The message a change names: a message of the room (not an entry that records a change). */
function target(current: Message | undefined, room: string, seq: bigint): Message {
  if (!current) throw new ConnectError(`room "${room}" has no message ${seq}`, Code.NotFound);
  if (current.change || current.update) {
    throw new ConnectError(`seq ${seq} of room "${room}" records a change, not a message: it cannot be changed`, Code.InvalidArgument);
  }
  return current;
}

function notDeleted(m: Message): Message {
  if (m.deleted) throw new ConnectError(`message ${m.seq} of room "${m.room}" was deleted`, Code.FailedPrecondition);
  return m;
}

/** The author's new text; undefined when it is the same. */
export const edit =
  (actor: Actor, room: string, seq: bigint, text: string) =>
  (current: Message | undefined): Message | undefined => {
    const m = notDeleted(target(current, room, seq));
    if (m.from !== actor.user) throw new ConnectError(`only its author may edit message ${seq} of room "${room}"`, Code.PermissionDenied);
    if (m.text === text) return undefined;
    const next = clone(MessageSchema, m);
    next.text = text;
    next.editedAt = timestampFromMs(Date.now());
    return next;
  };

/**
 * A tombstone: no text, no reactions; the seq, author, time and reply stay. Its author may delete a
 * message, and so may the room's owners and admins and the server's admins. Undefined when it is
 * one already.
 */
export const remove =
  (actor: Actor, room: string, seq: bigint, record: () => RoomRecord | undefined) =>
  (current: Message | undefined): Message | undefined => {
    const m = target(current, room, seq);
    if (m.from !== actor.user && !actor.admin) {
      const role = record()?.roles.get(actor.user);
      if (role !== "owner" && role !== "admin") {
        throw new ConnectError(`only its author or the room's owners and admins may delete message ${seq} of room "${room}"`, Code.PermissionDenied);
      }
    }
    if (m.deleted) return undefined;
    const next = clone(MessageSchema, m);
    next.text = "";
    next.deleted = true;
    next.reactions = [];
    return next;
  };

/** The actor's reaction added, or taken back; undefined when they had it already, or did not have it. */
export const react =
  (actor: Actor, room: string, seq: bigint, emoji: string, add: boolean) =>
  (current: Message | undefined): Message | undefined => {
    const m = notDeleted(target(current, room, seq));
    const user = actor.user;
    const had = m.reactions.find((r) => r.emoji === emoji);
    if (add === (had?.users.includes(user) ?? false)) return undefined;
    const next = clone(MessageSchema, m);
    if (add) {
      const mine = m.reactions.filter((r) => r.users.includes(user)).length;
      if (mine >= MAX_REACTIONS_PER_USER) {
        throw new ConnectError(`you have ${MAX_REACTIONS_PER_USER} reactions on message ${seq} already: take one back first`, Code.ResourceExhausted);
      }
      if (!had && m.reactions.length >= MAX_EMOJI_PER_MESSAGE) {
        throw new ConnectError(`message ${seq} has ${MAX_EMOJI_PER_MESSAGE} different reactions already: use one of them`, Code.ResourceExhausted);
      }
      if (m.reactions.reduce((n, r) => n + r.count, 0) >= MAX_REACTIONS_PER_MESSAGE) {
        throw new ConnectError(`message ${seq} has ${MAX_REACTIONS_PER_MESSAGE} reactions, the most one message takes`, Code.ResourceExhausted);
      }
      const r = next.reactions.find((x) => x.emoji === emoji);
      if (r) r.users.push(user);
      else next.reactions.push(create(ReactionSchema, { emoji, users: [user] }));
    } else {
      const r = next.reactions.find((x) => x.emoji === emoji)!;
      r.users = r.users.filter((u) => u !== user);
      if (r.users.length === 0) next.reactions = next.reactions.filter((x) => x !== r);
    }
    for (const r of next.reactions) r.count = r.users.length;
    return next;
  };
