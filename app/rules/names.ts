// Room names and user ids, and the direct-message rooms built from them.
//
// Case rules, the same everywhere (core, stores, web page, CLI): names and ids are case-sensitive
// ("Lobby" and "lobby" are two rooms, "Ann" and "ann" two users) and compared bytewise. The "dm:"
// prefix is reserved in every case: "DM:ann:ben" is refused rather than made a public room that
// looks like a direct conversation.
import { Code, ConnectError } from "@connectrpc/connect";

const ROOM = /^[A-Za-z0-9_.:-]{1,64}$/;
// No ":" in a user id, so that "dm:<a>:<b>" splits one way only.
const USER = /^[A-Za-z0-9_.-]{1,64}$/;
const DM_PREFIX = "dm:";
/** The patterns above in words, for the messages of every client (server, web page, CLI). */
export const USER_ID_RULE = "1 to 64 characters of A-Z a-z 0-9 _ . -";
export const ROOM_NAME_RULE = "1 to 64 characters of A-Z a-z 0-9 _ . : -";
/** The old API's replies come from "Server": nobody may pass for it. */
const RESERVED = new Set(["Server"]);

export function isValidUserId(user: string): boolean {
  return USER.test(user) && !RESERVED.has(user);
}

export function checkUserId(user: string, what = "user id"): string {
  if (RESERVED.has(user)) throw new ConnectError(`${what} "${user}" is reserved`, Code.InvalidArgument);
  if (!isValidUserId(user)) {
    throw new ConnectError(`${what} must be ${USER_ID_RULE} (got ${quote(user)})`, Code.InvalidArgument);
  }
  return user;
}

/** A name a public room may have: the alphabet, and not the reserved "dm:" prefix in any case. */
export function isPublicRoomName(room: string): boolean {
  return ROOM.test(room) && !isReservedPrefix(room);
}

function isReservedPrefix(room: string): boolean {
  return room.slice(0, DM_PREFIX.length).toLowerCase() === DM_PREFIX;
}

export function checkRoomName(room: string): string {
  if (!ROOM.test(room)) {
    throw new ConnectError(`room name must be ${ROOM_NAME_RULE} (got ${quote(room)})`, Code.InvalidArgument);
  }
  return room;
}

export function dmRoom(a: string, b: string): string {
  return a < b ? `${DM_PREFIX}${a}:${b}` : `${DM_PREFIX}${b}:${a}`;
}

/** The two users of a direct-message room, or undefined for a public room. */
export function dmParticipants(room: string): [string, string] | undefined {
  if (!room.startsWith(DM_PREFIX)) return undefined;
  const parts = room.slice(DM_PREFIX.length).split(":");
  if (parts.length !== 2) return undefined;
  return parts as [string, string];
}

/** Validates a room name and that `user` may read and write it; returns the name. */
export function checkRoomAccess(user: string, room: string): string {
  const pair = dmParticipants(checkAnyRoom(room));
  if (pair && pair[0] !== user && pair[1] !== user) {
    throw new ConnectError(`room "${room}" is a direct conversation between two other users`, Code.PermissionDenied);
  }
  return room;
}

/** Validates a room name, a direct-message room's included (whoever its two users are); returns the name. */
export function checkAnyRoom(room: string): string {
  // A DM room is named by two user ids of up to 64 characters each, so it is exempt from the
  // 64-character limit of public room names; its parts are checked instead.
  if (!room.startsWith(DM_PREFIX)) {
    if (isReservedPrefix(room)) {
      throw new ConnectError(
        `room "${room}": names that start with "dm:" in any case are reserved for direct messages, which use lower-case dm:<a>:<b>`,
        Code.InvalidArgument,
      );
    }
    return checkRoomName(room);
  }
  const pair = dmParticipants(room);
  if (!pair || !pair.every(isValidUserId) || pair[0] > pair[1]) {
    throw new ConnectError(`"${room}" is not a direct-message room: use dm:<a>:<b> with the two user ids sorted, or send with to_user`, Code.InvalidArgument);
  }
  return room;
}

export function isDmRoom(room: string): boolean {
  return room.startsWith(DM_PREFIX);
}

/**
 * Rooms whose names start with "_" are unlisted: open to anyone who names them, like any public
 * room, but ListRooms shows them to their members only. For rooms that are nobody else's
 * business, such as the load simulator's.
 */
export const UNLISTED_PREFIX = "_";

/**
 * Whether ListRooms shows the room to everyone. The others (direct-message and unlisted rooms)
 * it shows to their members only. The engines apply this rule in their own queries; the engine
 * contract suite checks that they agree with it.
 */
export function isListedToAll(room: string): boolean {
  return !isDmRoom(room) && !room.startsWith(UNLISTED_PREFIX);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + "…" : s);
}
