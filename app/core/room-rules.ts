// Who may do what in a room: the one place for these rules and their words, which every RPC,
// stream and protocol reaches through the core. Pure functions of a room's record (engine.ts:
// RoomRecord; undefined for a room nobody created, which is public and open to all) and the time.
import { Code, ConnectError } from "@connectrpc/connect";
import type { RoleName, RoomRecord } from "../engine/engine.ts";

/** Who is asking: a user, whether their token makes them a server-wide admin, and by which protocol (for the metrics). */
export interface Actor {
  user: string;
  admin?: boolean;
  protocol?: string;
  /** A backend with an API key (the server API): a server-wide admin, held to no per-user rate. */
  server?: boolean;
}

export const MAX_TITLE = 100;
export const MAX_TOPIC = 500;
export const MAX_REASON = 200;
/** Roles, bans and mutes per room: the record is one document that every instance holds. */
export const MAX_ROLES = 10_000;
/** Users one user may block: the list is one document that every instance holds. */
export const MAX_BLOCKS = 1_000;

const RANK: Record<RoleName, number> = { member: 1, admin: 2, owner: 3 };

export function roleOf(record: RoomRecord | undefined, user: string): RoleName | undefined {
  return record?.roles.get(user);
}

/** Until as words: "until 2026-12-05T10:00:00.000Z", or "for good". */
export function untilText(untilMs: number): string {
  return untilMs === 0 ? "for good" : `until ${new Date(untilMs).toISOString()}`;
}

/** Whether a ban or mute ending at `untilMs` (0: for good) holds at `now`; undefined: there is none. */
export const inForce = (untilMs: number | undefined, now = Date.now()) => untilMs !== undefined && (untilMs === 0 || untilMs > now);

/** Why `user` may not read `record`'s room now, or undefined when they may. */
export function readRefusal(record: RoomRecord | undefined, user: string, now = Date.now()): ConnectError | undefined {
  if (!record) return undefined;
  const ban = record.bans.get(user);
  if (ban && inForce(ban.untilMs, now)) {
    const why = ban.reason ? `: ${ban.reason}` : "";
    return new ConnectError(`you are banned from room "${record.name}" ${untilText(ban.untilMs)}${why}`, Code.PermissionDenied);
  }
  if (record.kind === "private" && !record.roles.has(user)) {
    return new ConnectError(`room "${record.name}" is private: an owner or admin must add you first`, Code.PermissionDenied);
  }
  return undefined;
}

/** A room nobody created, on a server where rooms exist only once created (EDGECHAT_OPEN_ROOMS=0). */
export function roomNotCreated(room: string): ConnectError {
  return new ConnectError(`room "${room}" does not exist: on this server rooms are made with CreateRoom`, Code.NotFound);
}

export function checkRead(record: RoomRecord | undefined, user: string, now = Date.now()): void {
  const refusal = readRefusal(record, user, now);
  if (refusal) throw refusal;
}

/** Reading, and not muted: what sending and typing need. */
export function checkWrite(record: RoomRecord | undefined, user: string, now = Date.now()): void {
  checkRead(record, user, now);
  const mute = record?.mutes.get(user);
  if (record && mute && inForce(mute.untilMs, now)) {
    throw new ConnectError(`you are muted in room "${record.name}" ${untilText(mute.untilMs)}`, Code.PermissionDenied);
  }
}

export type Manage = "update" | "kind" | "delete" | "invite" | "kick" | "role" | "ban" | "mute" | "list-bans";

/**
 * Whether `actor` may do `what` in the room (to `target` when it concerns someone): owners
 * everything; admins invite, change title and topic, and kick, ban and mute those below them;
 * members nothing; server-wide admins everything everywhere.
 */
export function checkManage(record: RoomRecord, actor: Actor, what: Manage, target?: string): void {
  if (actor.admin) return;
  const mine = roleOf(record, actor.user);
  const needOwner = what === "kind" || what === "delete" || what === "role";
  const rank = mine ? RANK[mine] : 0;
  if (rank < (needOwner ? RANK.owner : RANK.admin)) {
    const who = needOwner ? "owners" : "owners and admins";
    throw new ConnectError(`only the room's ${who} may ${WORDS[what]} in room "${record.name}"`, Code.PermissionDenied);
  }
  const theirs = target === undefined ? undefined : roleOf(record, target);
  if (theirs && mine !== "owner" && RANK[theirs] >= rank && target !== actor.user) {
    throw new ConnectError(`an admin may not ${WORDS[what]} an ${theirs} of room "${record.name}"`, Code.PermissionDenied);
  }
}

const WORDS: Record<Manage, string> = {
  update: "change the title and topic",
  kind: "change the kind",
  delete: "delete it",
  invite: "add members",
  kick: "remove members",
  role: "change roles",
  ban: "ban users",
  mute: "mute users",
  "list-bans": "see who is banned",
};

/** The owners left if `user` stopped being one: the room must keep at least one. */
export function checkNotLastOwner(record: RoomRecord, user: string, what: string): void {
  if (record.roles.get(user) !== "owner") return;
  for (const [u, r] of record.roles) if (r === "owner" && u !== user) return;
  throw new ConnectError(`"${user}" is the last owner of room "${record.name}": make someone else owner before ${what}`, Code.FailedPrecondition);
}

export function checkWords(title: string | undefined, topic: string | undefined, reason?: string): void {
  if (title !== undefined && [...title].length > MAX_TITLE) throw new ConnectError(`title is longer than ${MAX_TITLE} characters`, Code.InvalidArgument);
  if (topic !== undefined && [...topic].length > MAX_TOPIC) throw new ConnectError(`topic is longer than ${MAX_TOPIC} characters`, Code.InvalidArgument);
  if (reason !== undefined && [...reason].length > MAX_REASON) throw new ConnectError(`reason is longer than ${MAX_REASON} characters`, Code.InvalidArgument);
}

export function checkRoomSize(record: RoomRecord): void {
  if (record.roles.size + record.bans.size + record.mutes.size > MAX_ROLES) {
    throw new ConnectError(`room "${record.name}" has ${MAX_ROLES} roles, bans and mutes already: remove some first`, Code.ResourceExhausted);
  }
}
