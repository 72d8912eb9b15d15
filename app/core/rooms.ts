// Rooms with owners: creating, describing, changing and deleting rooms; members, roles, bans,
// mutes, and users' blocks. Each change is checked by room-rules.ts, stored in the engine's access
// store, and recorded as an entry in the room's history (a Message with `change` set) so that
// streams get it in seq order with the messages. What a change does to open streams (a banned
// user's sessions leaving the room) is the chat core's: it follows the access store.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type BannedUser,
  BannedUserSchema,
  type Member,
  MemberSchema,
  type Message,
  Role,
  type Room,
  type RoomChange,
  RoomChangeKind,
  RoomChangeSchema,
  RoomKind,
  RoomSchema,
} from "../gen/chat/v1/chat_pb.ts";
import type { Engine, RoleName, RoomRecord } from "../engine/engine.ts";
import { checkRoomName, checkUserId, dmParticipants, isPublicRoomName } from "../rules/names.ts";
import type { Limits } from "../config.ts";
import { FOR_GOOD_MS } from "../rules/changes.ts";
import { type Actor, checkManage, checkNotLastOwner, checkRead, checkRoomSize, checkWords, inForce, MAX_BLOCKS, roleOf, roomNotCreated } from "./room-rules.ts";

export interface RoomsContext {
  engine: Engine;
  limits: Pick<Limits, "maxRoomsPerUser">;
  /** EDGECHAT_OPEN_ROOMS: whether a room nobody created exists. */
  openRooms: boolean;
  /** Stores a change entry in the room's history and publishes it, as a message is. */
  record(room: string, from: string, change: RoomChange): Promise<Message>;
  /** A room was deleted (no entry records that: its history goes with it). */
  deleted(room: string, by: string): void;
  /**
   * Takes one of the actor's rate tokens, or refuses: a change writes like a message ("send"),
   * a look reads like History ("read").
   */
  take(kind: "send" | "read", actor: Actor): void;
}

type ChangeInit = MessageInitShape<typeof RoomChangeSchema>;

export interface RoomUpdate {
  title?: string;
  topic?: string;
  kind?: RoomKind;
}

const ROLE_OF: Record<RoleName, Role> = { owner: Role.OWNER, admin: Role.ADMIN, member: Role.MEMBER };
const ROLE_NAMED = new Map<Role, RoleName>([
  [Role.OWNER, "owner"],
  [Role.ADMIN, "admin"],
  [Role.MEMBER, "member"],
]);

export class Rooms {
  constructor(private readonly ctx: RoomsContext) {}

  private get access() {
    return this.ctx.engine.access;
  }

  async create(actor: Actor, name: string, kind: RoomKind, title: string, topic: string): Promise<{ room: Room; entry: Message }> {
    checkCreatable(name);
    if (kind === RoomKind.DIRECT) throw new ConnectError("a direct-message room is made by sending to_user, not by CreateRoom", Code.InvalidArgument);
    checkWords(title, topic);
    this.ctx.take("send", actor);
    if (this.access.room(name)) throw new ConnectError(`room "${name}" exists already`, Code.AlreadyExists);
    const max = this.ctx.limits.maxRoomsPerUser;
    if (!actor.admin && this.access.createdBy(actor.user) >= max) {
      throw new ConnectError(`you have ${max} rooms already, the most one user may create: delete one first`, Code.ResourceExhausted);
    }
    // A room made by first use belongs to everyone who uses it: only a server admin may take it over.
    if (!actor.admin && (await this.ctx.engine.history.lastSeq(name)) > 0n) {
      throw new ConnectError(`room "${name}" exists already (made by its first message): pick another name`, Code.AlreadyExists);
    }
    const record: RoomRecord = {
      name,
      kind: kind === RoomKind.PRIVATE ? "private" : "public",
      title,
      topic,
      createdBy: actor.user,
      createdAtMs: Date.now(),
      roles: new Map([[actor.user, "owner"]]),
      bans: new Map(),
      mutes: new Map(),
    };
    if (!(await this.access.createRoom(record))) throw new ConnectError(`room "${name}" exists already`, Code.AlreadyExists);
    const entry = await this.ctx.record(name, actor.user, create(RoomChangeSchema, { kind: RoomChangeKind.CREATED, room: roomProto(record) }));
    return { room: roomProto(record, actor.user), entry };
  }

  /** The room as the actor may see it; a room nobody created is described as public, without owners. */
  get(actor: Actor, name: string): Room {
    this.ctx.take("read", actor);
    if (dmParticipants(name)) return create(RoomSchema, { name, kind: kindProto(name, undefined) });
    const record = this.access.room(name);
    if (!actor.admin) checkRead(record, actor.user);
    if (!record && !this.ctx.openRooms) throw roomNotCreated(name);
    if (!record) return create(RoomSchema, { name, kind: kindProto(name, undefined) });
    return roomProto(record, actor.user);
  }

  async update(actor: Actor, name: string, u: RoomUpdate): Promise<{ room: Room; entry?: Message }> {
    checkWords(u.title, u.topic);
    if (u.kind === RoomKind.DIRECT) throw new ConnectError("a room cannot become a direct-message room", Code.InvalidArgument);
    const kind = u.kind === RoomKind.PRIVATE ? "private" : u.kind === RoomKind.PUBLIC ? "public" : undefined;
    let changed = false;
    const record = await this.change(actor, name, (r) => {
      if (u.title !== undefined || u.topic !== undefined) checkManage(r, actor, "update");
      if (kind !== undefined && kind !== r.kind) checkManage(r, actor, "kind");
      const next = { ...r, title: u.title ?? r.title, topic: u.topic ?? r.topic, kind: kind ?? r.kind };
      changed = next.title !== r.title || next.topic !== r.topic || next.kind !== r.kind;
      return next;
    });
    if (!changed) return { room: roomProto(record, actor.user) };
    const entry = await this.ctx.record(name, actor.user, create(RoomChangeSchema, { kind: RoomChangeKind.UPDATED, room: roomProto(record) }));
    return { room: roomProto(record, actor.user), entry };
  }

  async delete(actor: Actor, name: string): Promise<void> {
    const record = this.existing(name);
    this.ctx.take("send", actor);
    checkManage(record, actor, "delete");
    // The record first: from then on the room refuses everyone and open streams leave it.
    await this.access.deleteRoom(name);
    await this.ctx.engine.history.deleteRoom(name);
    this.ctx.deleted(name, actor.user);
  }

  members(actor: Actor, name: string): { members: Member[]; banned: BannedUser[] } {
    const record = this.existing(name);
    this.ctx.take("read", actor);
    if (!actor.admin) checkRead(record, actor.user);
    const now = Date.now();
    const users = new Set([...record.roles.keys(), ...record.mutes.keys()]);
    const members = [...users].sort().flatMap((user) => {
      const role = record.roles.get(user);
      const mute = record.mutes.get(user);
      const muted = mute && inForce(mute.untilMs, now);
      if (!role && !muted) return [];
      return [create(MemberSchema, { user, role: role ? ROLE_OF[role] : Role.UNSPECIFIED, mutedUntil: muted ? untilStamp(mute.untilMs) : undefined })];
    });
    let banned: BannedUser[] = [];
    if (actor.admin || ["owner", "admin"].includes(roleOf(record, actor.user) ?? "")) {
      banned = [...record.bans]
        .filter(([, b]) => inForce(b.untilMs, now))
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([user, b]) => create(BannedUserSchema, { user, until: b.untilMs ? timestampFromMs(b.untilMs) : undefined, reason: b.reason, by: b.by }));
    }
    return { members, banned };
  }

  async addMember(actor: Actor, name: string, user: string): Promise<Message | undefined> {
    checkUserId(user, "user");
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "invite", user);
      checkNotBanned(r, user);
      if (r.roles.has(user)) return undefined;
      r.roles.set(user, "member");
      return { kind: RoomChangeKind.MEMBER_ADDED, user, role: Role.MEMBER };
    });
  }

  /** A kick, or the actor leaving for good (user = the actor). */
  async removeMember(actor: Actor, name: string, user: string): Promise<Message | undefined> {
    checkUserId(user, "user");
    return this.apply(actor, name, (r) => {
      if (user === actor.user) {
        if (!r.roles.has(user)) throw new ConnectError(`you are not a member of room "${name}"`, Code.NotFound);
        checkNotLastOwner(r, user, "leaving");
      } else {
        checkManage(r, actor, "kick", user);
        if (!r.roles.has(user)) throw new ConnectError(`"${user}" is not a member of room "${name}"`, Code.NotFound);
        checkNotLastOwner(r, user, "removing them");
      }
      r.roles.delete(user);
      return { kind: RoomChangeKind.MEMBER_REMOVED, user };
    });
  }

  async setRole(actor: Actor, name: string, user: string, role: Role): Promise<Message | undefined> {
    checkUserId(user, "user");
    const named = ROLE_NAMED.get(role);
    if (!named) throw new ConnectError("role must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER", Code.InvalidArgument);
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "role", user);
      checkNotBanned(r, user);
      if (r.roles.get(user) === named) return undefined;
      if (named !== "owner") checkNotLastOwner(r, user, "stepping down");
      r.roles.set(user, named);
      return { kind: RoomChangeKind.ROLE_CHANGED, user, role };
    });
  }

  async ban(actor: Actor, name: string, user: string, until: Timestamp | undefined, reason: string): Promise<Message | undefined> {
    checkUserId(user, "user");
    checkWords(undefined, undefined, reason);
    const untilMs = futureMs(until);
    if (user === actor.user) throw new ConnectError("you cannot ban yourself", Code.InvalidArgument);
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "ban", user);
      checkNotLastOwner(r, user, "banning them");
      r.bans.set(user, { untilMs, reason, by: actor.user });
      r.roles.delete(user);
      return { kind: RoomChangeKind.BANNED, user, until: untilMs ? timestampFromMs(untilMs) : undefined, reason };
    });
  }

  async unban(actor: Actor, name: string, user: string): Promise<Message | undefined> {
    checkUserId(user, "user");
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "ban", user);
      if (!r.bans.delete(user)) return undefined;
      return { kind: RoomChangeKind.UNBANNED, user };
    });
  }

  async mute(actor: Actor, name: string, user: string, until: Timestamp | undefined): Promise<Message | undefined> {
    checkUserId(user, "user");
    const untilMs = futureMs(until);
    if (user === actor.user) throw new ConnectError("you cannot mute yourself", Code.InvalidArgument);
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "mute", user);
      r.mutes.set(user, { untilMs, by: actor.user });
      return { kind: RoomChangeKind.MUTED, user, until: untilMs ? timestampFromMs(untilMs) : undefined };
    });
  }

  async unmute(actor: Actor, name: string, user: string): Promise<Message | undefined> {
    checkUserId(user, "user");
    return this.apply(actor, name, (r) => {
      checkManage(r, actor, "mute", user);
      if (!r.mutes.delete(user)) return undefined;
      return { kind: RoomChangeKind.UNMUTED, user };
    });
  }

  async block(actor: Actor, other: string, blocked: boolean): Promise<void> {
    checkUserId(other, "user");
    if (other === actor.user) throw new ConnectError("you cannot block yourself", Code.InvalidArgument);
    this.ctx.take("send", actor);
    const have = this.access.blocked(actor.user);
    if (blocked && !have.has(other) && have.size >= MAX_BLOCKS) {
      throw new ConnectError(`you have blocked ${MAX_BLOCKS} users, the most: unblock one first`, Code.ResourceExhausted);
    }
    await this.access.setBlocked(actor.user, other, blocked);
  }

  blocked(actor: Actor): string[] {
    this.ctx.take("read", actor);
    return [...this.access.blocked(actor.user)].sort();
  }

  /**
   * Changes the room's record with `edit` (which may refuse by throwing, or return undefined for
   * "nothing to change") and records the change it describes in the room's history.
   */
  private async apply(actor: Actor, name: string, edit: (r: RoomRecord) => ChangeInit | undefined): Promise<Message | undefined> {
    let change: ChangeInit | undefined;
    await this.change(actor, name, (r) => {
      change = edit(r);
      if (change) checkRoomSize(r);
      return r;
    });
    if (!change) return undefined;
    const entry = await this.ctx.record(name, actor.user, create(RoomChangeSchema, change));
    // Out of the room: out of its directory too (ListRooms counts members from there).
    if (change.kind === RoomChangeKind.MEMBER_REMOVED || change.kind === RoomChangeKind.BANNED) {
      await this.ctx.engine.rooms.removeMember(name, change.user ?? "");
    }
    return entry;
  }

  /** The room's record changed by `edit`; a server admin may moderate a room nobody created (it then gets a record without owners). */
  private async change(actor: Actor, name: string, edit: (r: RoomRecord) => RoomRecord): Promise<RoomRecord> {
    checkManaged(name);
    this.ctx.take("send", actor);
    let record = await this.access.updateRoom(name, edit);
    if (!record && actor.admin && isPublicRoomName(name)) {
      await this.access.createRoom({
        name,
        kind: "public",
        title: "",
        topic: "",
        createdBy: "",
        createdAtMs: Date.now(),
        roles: new Map(),
        bans: new Map(),
        mutes: new Map(),
      });
      record = await this.access.updateRoom(name, edit);
    }
    if (!record) throw notCreated(name);
    return record;
  }

  private existing(name: string): RoomRecord {
    checkManaged(name);
    const record = this.access.room(name);
    if (!record) throw notCreated(name);
    return record;
  }
}

/** A name a room with owners can have: a valid room name, not a direct-message room. */
function checkManaged(name: string): void {
  if (dmParticipants(name)) throw new ConnectError(`"${name}" is a direct-message room: it has no owners or members to manage`, Code.InvalidArgument);
  checkRoomName(name);
}

/** Roles are for those who may be in the room: a banned user is unbanned first. */
function checkNotBanned(r: RoomRecord, user: string): void {
  if (inForce(r.bans.get(user)?.untilMs)) throw new ConnectError(`"${user}" is banned from room "${r.name}": unban them first`, Code.FailedPrecondition);
}

function notCreated(name: string): ConnectError {
  return new ConnectError(`room "${name}" has no owners (nobody created it with CreateRoom): there is nothing to manage`, Code.FailedPrecondition);
}

function checkCreatable(name: string): void {
  checkRoomName(name);
  if (!isPublicRoomName(name))
    throw new ConnectError(`room "${name}": names that start with "dm:" in any case are reserved for direct messages`, Code.InvalidArgument);
}

/** A ban's or mute's end in ms (0: for good); refuses one in the past. */
function futureMs(until: Timestamp | undefined): number {
  if (!until) return 0;
  const ms = timestampDate(until).getTime();
  if (!(ms > Date.now())) throw new ConnectError("until must be in the future (leave it unset for good)", Code.InvalidArgument);
  return ms;
}

const untilStamp = (ms: number) => timestampFromMs(ms === 0 ? FOR_GOOD_MS : ms);

export function roomProto(r: RoomRecord, viewer?: string): Room {
  const role = viewer === undefined ? undefined : r.roles.get(viewer);
  return create(RoomSchema, {
    name: r.name,
    kind: kindProto(r.name, r),
    title: r.title,
    topic: r.topic,
    createdBy: r.createdBy,
    createdAt: timestampFromMs(r.createdAtMs),
    yourRole: role ? ROLE_OF[role] : Role.UNSPECIFIED,
  });
}

/** A room's kind on the wire: from its record, DIRECT for dm:<a>:<b>, unspecified for a room nobody created. */
export function kindProto(name: string, record: RoomRecord | undefined): RoomKind {
  if (record) return record.kind === "private" ? RoomKind.PRIVATE : RoomKind.PUBLIC;
  return dmParticipants(name) ? RoomKind.DIRECT : RoomKind.UNSPECIFIED;
}

export function roleProto(role: RoleName | undefined): Role {
  return role ? ROLE_OF[role] : Role.UNSPECIFIED;
}
