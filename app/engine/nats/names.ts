// Subjects, stream and bucket names, and how names become subject tokens. Room names contain "."
// and ":", which NATS gives meaning to, and user ids are free text, so every name becomes one
// base64url token (no padding): [A-Za-z0-9_-], valid both in subjects and in KV keys.
import { createHash } from "node:crypto";

export const STREAM = "EDGECHAT_MSGS";
export const ROOMS_BUCKET = "edgechat_rooms";
export const PRESENCE_BUCKET = "edgechat_presence";
export const ACCESS_BUCKET = "edgechat_access";
export const READ_STATE_BUCKET = "edgechat_read_state";

/** "" (the "connected at all" presence scope) has no base64 spelling; "=" is never produced by it. */
export const token = (name: string): string => (name === "" ? "=" : Buffer.from(name, "utf8").toString("base64url"));
export const untoken = (t: string): string => (t === "=" ? "" : Buffer.from(t, "base64url").toString("utf8"));

/** Where message `seq` of a room is stored: one subject per message (history.ts says why). */
export const roomSubject = (room: string, seq: number | "*") => `edgechat.room.${token(room)}.${seq}`;
/** Where the stream republishes what it stored (see setup.ts): only stored messages go live. */
export const liveSubject = (room: string) => `edgechat.live.${token(room)}.*`;
/** Ephemeral room events (presence, typing): core NATS, no storage. */
export const eventsSubject = (room: string) => `edgechat.events.${token(room)}`;
export const inboxSubject = (user: string) => `edgechat.inbox.${token(user)}`;

/**
 * The JetStream dedupe key of a message: from (room, sender, client_msg_id) when the client gave
 * one, so that a retry through any region maps to the same key; otherwise from the message's own
 * id, so that the engine may retry a publish whose outcome it did not see without storing twice.
 */
/**
 * The dedupe key of a change's entry: from the request (sender, key, message, kind, emoji) when the
 * client gave a key, so that a retry through any region is recognized; otherwise a fresh one.
 */
export function updateMsgId(u: { room: string; from: string; clientMsgId: string; targetSeq: bigint; kind: number; emoji: string }): string {
  if (!u.clientMsgId) return `m:${crypto.randomUUID()}`;
  return "u:" + createHash("sha256").update(`${u.room}\0${u.from}\0${u.clientMsgId}\0${u.targetSeq}\0${u.kind}\0${u.emoji}`).digest("base64url");
}

export function msgId(room: string, from: string, clientMsgId: string, id: string): string {
  if (!clientMsgId) return `m:${id}`;
  return "c:" + createHash("sha256").update(`${room}\0${from}\0${clientMsgId}`).digest("base64url");
}
