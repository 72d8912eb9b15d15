// A room change (a history entry with `change` set, docs/api.md) or a change to a message (one
// with `update` set) in words, one line for a person: what the clients show where a message would be.
import { type Message, Role, RoomChangeKind, RoomKind, UpdateKind } from "../gen/chat/v1/chat_pb.ts";

/**
 * A mute without end where a field must hold a time (ListMembers' muted_until): the far future,
 * 9999-12-31T23:59:59Z. The server sends it, the clients read it as "for good".
 */
export const FOR_GOOD_MS = 253402300799000;

const ROLE_WORDS: Record<number, string> = { [Role.OWNER]: "an owner", [Role.ADMIN]: "an admin", [Role.MEMBER]: "a member" };

/** "olga banned eve for good: spam"; undefined for a plain message. */
export function describeChange(m: Message): string | undefined {
  const c = m.change;
  if (!c) return undefined;
  const by = m.from;
  const until = c.until ? `until ${new Date(Number(c.until.seconds) * 1000).toISOString().replace(".000Z", "Z")}` : "for good";
  switch (c.kind) {
    case RoomChangeKind.CREATED:
      return `${by} created ${c.room?.kind === RoomKind.PRIVATE ? "this private room" : "this room"}${c.room?.title ? ` "${c.room.title}"` : ""}`;
    case RoomChangeKind.UPDATED: {
      const r = c.room;
      const what = [
        r?.title ? `title "${r.title}"` : "no title",
        r?.topic ? `topic "${r.topic}"` : "no topic",
        r?.kind === RoomKind.PRIVATE ? "private" : "public",
      ];
      return `${by} changed the room: ${what.join(", ")}`;
    }
    case RoomChangeKind.MEMBER_ADDED:
      return `${by} added ${c.user}`;
    case RoomChangeKind.MEMBER_REMOVED:
      return c.user === by ? `${by} left the room` : `${by} removed ${c.user}`;
    case RoomChangeKind.ROLE_CHANGED:
      return `${by} made ${c.user} ${ROLE_WORDS[c.role] ?? "a member"}`;
    case RoomChangeKind.BANNED:
      return `${by} banned ${c.user} ${until}${c.reason ? `: ${c.reason}` : ""}`;
    case RoomChangeKind.UNBANNED:
      return `${by} lifted ${c.user}'s ban`;
    case RoomChangeKind.MUTED:
      return `${by} muted ${c.user} ${until}`;
    case RoomChangeKind.UNMUTED:
      return `${by} unmuted ${c.user}`;
    default:
      return `${by} changed the room`;
  }
}

/** "ben reacted 👍 to ann's message #3"; undefined for an entry that is not a change to a message. */
export function describeUpdate(m: Message): string | undefined {
  const u = m.update;
  if (!u) return undefined;
  const by = m.from;
  const author = u.message?.from;
  const whose = author === undefined ? "message" : author === by ? "their message" : `${author}'s message`;
  const what = `${whose} #${u.targetSeq}`;
  switch (u.kind) {
    case UpdateKind.EDITED:
      return u.message && !u.message.deleted ? `${by} edited ${what}: ${u.message.text}` : `${by} edited ${what}`;
    case UpdateKind.DELETED:
      return `${by} deleted ${what}`;
    case UpdateKind.REACTION_ADDED:
      return `${by} reacted ${u.emoji} to ${what}`;
    case UpdateKind.REACTION_REMOVED:
      return `${by} took back ${u.emoji} on ${what}`;
    default:
      return `${by} changed ${what}`;
  }
}
