// Rooms with owners, in the core on each engine: kinds, members and roles, bans, mutes,
// blocks, deletion, and what each does to open sessions. The rules are checked here once; the
// end-to-end tests check that every protocol and path reaches them.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { type ChatEvent, Role, RoomChangeKind, RoomKind } from "../gen/chat/v1/chat_pb.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { eventually } from "../../test/support/wait.ts";
import type { Engine } from "../engine/engine.ts";
import type { Limits } from "../config.ts";
import { bothEngines } from "../../test/support/engines.ts";
import { createLogger } from "../log.ts";
import { ChatCore } from "./chat.ts";
import type { Session } from "./session.ts";
import { refusal } from "../../test/support/refusal.ts";

let engine: Engine;
let core: ChatCore;
const make = (openRooms = true, limits: Partial<Limits> = {}) =>
  new ChatCore({ engine, region: "test", limits: { ...TEST_LIMITS, ...limits }, log: createLogger("error"), openRooms });

// Every rule on both engines: the records live in each engine's access store (a SQLite table, a
// NATS KV bucket that every instance follows).
const ENGINES = await bothEngines();

const owner = { user: "olga" };
const admin = { user: "root", admin: true };

function collect(s: Session) {
  const events: ChatEvent[] = [];
  const read = () => events.push(...s.take());
  s.attach({ readable: read });
  read();
  return {
    events,
    errors: () => events.flatMap((e) => (e.kind.case === "error" ? [e.kind.value] : [])),
    messages: (room: string) => events.flatMap((e) => (e.kind.case === "message" && e.kind.value.room === room ? [e.kind.value] : [])),
  };
}

/** The ConnectError a call fails with, as "code: message". */
const until = (check: () => boolean) => eventually(check, 3000, "condition", 2);

async function privateRoom(name = "team") {
  await core.rooms.create(owner, name, RoomKind.PRIVATE, "The team", "plans");
  return name;
}

for (const [name, factory] of ENGINES) {
  describe(`on the ${name} engine`, () => {
    beforeEach(async () => {
      engine = await factory();
      core = make();
    });
    afterEach(async () => {
      await core.drain();
      await engine.close();
    });
    rules();
  });
}

function rules(): void {
  describe("kinds", () => {
    test("a private room answers PermissionDenied to non-members on every path, and ListRooms hides it from them", async () => {
      const room = await privateRoom();
      const eve = await core.open("eve", "test");
      const denied = 'PermissionDenied: room "team" is private: an owner or admin must add you first';
      expect(await refusal(core.join(eve, room))).toBe(denied);
      expect(await refusal(core.subscribe("eve", "test", [room], {}))).toBe(denied);
      expect(await refusal(core.send("eve", { room }, "hi", ""))).toBe(denied);
      expect(await refusal(core.history("eve", room, 0n, undefined, 10))).toBe(denied);
      expect(await refusal(core.listOnline("eve", room))).toBe(denied);
      expect(await refusal(() => core.rooms.get({ user: "eve" }, room))).toBe(denied);
      expect(await refusal(() => core.rooms.members({ user: "eve" }, room))).toBe(denied);
      await core.send("eve", { room: "open" }, "hi", "");
      expect((await core.listRooms("eve")).rooms.map((r) => r.name)).toEqual(["open"]);
      const mine = (await core.listRooms("olga")).rooms.find((r) => r.name === room);
      expect(mine).toMatchObject({ kind: RoomKind.PRIVATE, title: "The team", topic: "plans", yourRole: Role.OWNER });
      expect((await core.listRooms("olga")).rooms.find((r) => r.name === "open")?.kind).toBe(RoomKind.UNSPECIFIED);
    });

    test("CreateRoom: the creator owns it; a name in use or a dm: name is refused; a server admin may take over an open room", async () => {
      const { room, entry } = await core.rooms.create(owner, "plans", RoomKind.PUBLIC, "", "");
      expect([room.yourRole, room.createdBy, entry.seq, entry.change?.kind]).toEqual([Role.OWNER, "olga", 1n, RoomChangeKind.CREATED]);
      expect(await refusal(core.rooms.create({ user: "ben" }, "plans", RoomKind.PUBLIC, "", ""))).toBe('AlreadyExists: room "plans" exists already');
      await core.send("ann", { room: "lobby" }, "first", "");
      expect(await refusal(core.rooms.create(owner, "lobby", RoomKind.PRIVATE, "", ""))).toBe(
        'AlreadyExists: room "lobby" exists already (made by its first message): pick another name',
      );
      expect(await refusal(core.rooms.create(owner, "dm:a:b", RoomKind.PUBLIC, "", ""))).toStartWith("InvalidArgument:");
      expect(await refusal(core.rooms.create(owner, "x", RoomKind.PUBLIC, "t".repeat(101), ""))).toBe("InvalidArgument: title is longer than 100 characters");
      const taken = await core.rooms.create(admin, "lobby", RoomKind.PUBLIC, "Lobby", "");
      // The room keeps its history: the creation is its next entry.
      expect(taken.entry.seq).toBe(2n);
    });

    test("a user creates at most EDGECHAT_MAX_ROOMS_PER_USER rooms, a server-wide admin more; room changes count as sends", async () => {
      for (let i = 0; i < TEST_LIMITS.maxRoomsPerUser; i++) await core.rooms.create(owner, `r${i}`, RoomKind.PUBLIC, "", "");
      expect(await refusal(core.rooms.create(owner, "one-more", RoomKind.PUBLIC, "", ""))).toBe(
        `ResourceExhausted: you have ${TEST_LIMITS.maxRoomsPerUser} rooms already, the most one user may create: delete one first`,
      );
      await core.rooms.create(admin, "admins-room", RoomKind.PUBLIC, "", "");
      await core.rooms.delete(owner, "r0");
      await core.rooms.create(owner, "one-more", RoomKind.PUBLIC, "", "");
      await core.drain();
      core = make(true, { ratePerSecond: 1, rateBurst: 2 });
      await core.rooms.addMember(owner, "r1", "ben");
      await core.rooms.addMember(owner, "r1", "cat");
      expect(await refusal(core.rooms.addMember(owner, "r1", "dan"))).toStartWith("ResourceExhausted: rate limit: at most 1 messages per second");
      expect(core.rooms.members(owner, "r1").members.map((m) => m.user)).toEqual(["ben", "cat", "olga"]);
    });

    test("EDGECHAT_OPEN_ROOMS=0: a room nobody created does not exist; a created one works; DMs still do", async () => {
      await core.drain();
      core = make(false);
      const s = await core.open("ann", "test");
      expect(await refusal(core.join(s, "nowhere"))).toBe('NotFound: room "nowhere" does not exist: on this server rooms are made with CreateRoom');
      expect(await refusal(core.send("ann", { room: "nowhere" }, "hi", ""))).toStartWith("NotFound:");
      expect(await refusal(() => core.rooms.get({ user: "ann" }, "nowhere"))).toStartWith("NotFound:");
      await core.rooms.create({ user: "ann" }, "somewhere", RoomKind.PUBLIC, "", "");
      await core.join(s, "somewhere");
      await core.send("ann", { room: "somewhere" }, "hi", "");
      await core.send("ann", { toUser: "ben" }, "hi", "");
    });
  });

  describe("members and roles", () => {
    test("an owner invites; a member reads and writes; members may not invite; an admin may not remove an owner", async () => {
      const room = await privateRoom();
      expect(await refusal(core.rooms.addMember({ user: "ben" }, room, "cat"))).toBe(
        'PermissionDenied: only the room\'s owners and admins may add members in room "team"',
      );
      const added = await core.rooms.addMember(owner, room, "ben");
      expect([added?.change?.kind, added?.change?.user, added?.change?.role]).toEqual([RoomChangeKind.MEMBER_ADDED, "ben", Role.MEMBER]);
      expect(await core.rooms.addMember(owner, room, "ben")).toBeUndefined();
      const ben = collect(await core.subscribe("ben", "test", [room], {}));
      await core.send("ben", { room }, "hello team", "");
      await until(() => ben.messages(room).some((m) => m.text === "hello team"));
      expect(await refusal(core.rooms.addMember({ user: "ben" }, room, "cat"))).toStartWith("PermissionDenied:");
      await core.rooms.setRole(owner, room, "ben", Role.ADMIN);
      await core.rooms.addMember({ user: "ben" }, room, "cat");
      expect(await refusal(core.rooms.removeMember({ user: "ben" }, room, "olga"))).toBe(
        'PermissionDenied: an admin may not remove members an owner of room "team"',
      );
      expect(await refusal(core.rooms.setRole({ user: "ben" }, room, "cat", Role.ADMIN))).toBe(
        'PermissionDenied: only the room\'s owners may change roles in room "team"',
      );
      expect(await refusal(core.rooms.setRole(owner, room, "cat", Role.UNSPECIFIED))).toBe(
        "InvalidArgument: role must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER",
      );
      const { members } = core.rooms.members({ user: "cat" }, room);
      expect(members.map((m) => [m.user, Role[m.role]])).toEqual([
        ["ben", "ADMIN"],
        ["cat", "MEMBER"],
        ["olga", "OWNER"],
      ]);
    });

    test("a member kicked with an open stream leaves the room at once; a Subscribe stream left without rooms ends", async () => {
      const room = await privateRoom();
      await core.rooms.addMember(owner, room, "ben");
      const chat = await core.open("ben", "test");
      const c = collect(chat);
      await core.join(chat, room);
      await core.join(chat, "elsewhere");
      const sub = await core.subscribe("ben", "test", [room], {});
      collect(sub);
      const members = async () => (await core.listRooms("olga")).rooms.find((r) => r.name === room)?.members;
      expect(await members()).toBe(1);
      await core.rooms.removeMember(owner, room, "ben");
      // Out of the room's directory too.
      expect(await members()).toBe(0);
      await until(() => c.errors().length > 0);
      expect(c.errors().map((e) => [e.code, e.text, e.room])).toEqual([
        ["permission_denied", `room "team" is private: an owner or admin must add you first`, room],
      ]);
      expect(chat.feeds.has(room)).toBe(false);
      expect(chat.closed).toBe(false);
      await until(() => sub.closed);
      expect(sub.error?.code).toBe(Code.PermissionDenied);
      await core.send("olga", { room }, "after the kick", "");
      await Bun.sleep(20);
      expect(c.messages(room).some((m) => m.text === "after the kick")).toBe(false);
      expect(await refusal(core.join(chat, room))).toStartWith("PermissionDenied:");
    });

    test("the last owner cannot leave or step down without handing over; then can", async () => {
      const room = await privateRoom();
      expect(await refusal(core.rooms.removeMember(owner, room, "olga"))).toBe(
        'FailedPrecondition: "olga" is the last owner of room "team": make someone else owner before leaving',
      );
      expect(await refusal(core.rooms.setRole(owner, room, "olga", Role.MEMBER))).toStartWith("FailedPrecondition:");
      await core.rooms.setRole(owner, room, "ben", Role.OWNER);
      const left = await core.rooms.removeMember(owner, room, "olga");
      expect([left?.change?.kind, left?.from]).toEqual([RoomChangeKind.MEMBER_REMOVED, "olga"]);
      expect(await refusal(core.send("olga", { room }, "hi", ""))).toStartWith("PermissionDenied:");
    });

    test("a member demoted while connected keeps reading, and loses what the role allowed", async () => {
      const room = await privateRoom();
      await core.rooms.setRole(owner, room, "ben", Role.ADMIN);
      const ben = await core.open("ben", "test");
      const b = collect(ben);
      await core.join(ben, room);
      await core.rooms.addMember({ user: "ben" }, room, "cat");
      await core.rooms.setRole(owner, room, "ben", Role.MEMBER);
      expect(await refusal(core.rooms.addMember({ user: "ben" }, room, "dan"))).toStartWith("PermissionDenied:");
      await core.send("olga", { room }, "still here?", "");
      await until(() => b.messages(room).some((m) => m.text === "still here?"));
      expect(b.errors()).toEqual([]);
      // The change itself reached the stream, in order with the messages.
      const kinds = b.messages(room).map((m) => (m.change ? RoomChangeKind[m.change.kind] : m.text));
      expect(kinds).toEqual(["MEMBER_ADDED", "ROLE_CHANGED", "still here?"]);
    });
  });

  describe("moderation", () => {
    test("a ban removes the user's open streams with the reason, keeps them out, and ends when it expires", async () => {
      await core.rooms.create(owner, "town", RoomKind.PUBLIC, "", "");
      const spam = await core.open("spammer", "test");
      const s = collect(spam);
      await core.join(spam, "town");
      const until_ = Date.now() + 400;
      const entry = await core.rooms.ban(owner, "town", "spammer", timestampFromMs(until_), "links to scams");
      expect([entry?.change?.kind, entry?.change?.reason]).toEqual([RoomChangeKind.BANNED, "links to scams"]);
      await until(() => s.errors().length > 0);
      const [err] = s.errors();
      expect([err.code, err.room]).toEqual(["permission_denied", "town"]);
      expect(err.text).toBe(`you are banned from room "town" until ${new Date(until_).toISOString()}: links to scams`);
      expect(await refusal(core.join(spam, "town"))).toBe(`PermissionDenied: ${err.text}`);
      expect(await refusal(core.send("spammer", { room: "town" }, "buy now", ""))).toStartWith("PermissionDenied: you are banned");
      expect(core.rooms.members(owner, "town").banned.map((b) => [b.user, b.reason, b.by])).toEqual([["spammer", "links to scams", "olga"]]);
      expect(core.rooms.members({ user: "ben" }, "town").banned).toEqual([]);
      await eventually(() => Date.now() > until_ + 10, 2000);
      await core.join(spam, "town");
      await core.send("spammer", { room: "town" }, "sorry", "");
    });

    test("a mute lets the user read but not send or type, saying until when; unmute lifts it", async () => {
      await core.rooms.create(owner, "town", RoomKind.PUBLIC, "", "");
      const ben = await core.open("ben", "test");
      const b = collect(ben);
      await core.join(ben, "town");
      await core.rooms.mute(owner, "town", "ben", undefined);
      expect(await refusal(core.send("ben", { room: "town" }, "hi", ""))).toBe('PermissionDenied: you are muted in room "town" for good');
      expect(await refusal(core.typing(ben, "town"))).toStartWith("PermissionDenied: you are muted");
      await core.send("olga", { room: "town" }, "you can read this", "");
      await until(() => b.messages("town").some((m) => m.text === "you can read this"));
      expect(core.rooms.members(owner, "town").members.find((m) => m.user === "ben")?.mutedUntil).toBeDefined();
      await core.rooms.unmute(owner, "town", "ben");
      await core.send("ben", { room: "town" }, "thanks", "");
    });

    test("bad moderation input gets a precise error and changes nothing", async () => {
      await core.rooms.create(owner, "town", RoomKind.PUBLIC, "", "");
      expect(await refusal(core.rooms.ban(owner, "town", "ben", timestampFromMs(Date.now() - 1000), ""))).toBe(
        "InvalidArgument: until must be in the future (leave it unset for good)",
      );
      expect(await refusal(core.rooms.ban(owner, "town", "olga", undefined, ""))).toBe("InvalidArgument: you cannot ban yourself");
      expect(await refusal(core.rooms.ban(owner, "town", "ben", undefined, "r".repeat(201)))).toBe("InvalidArgument: reason is longer than 200 characters");
      expect(await refusal(core.rooms.ban(owner, "town", "bad id!", undefined, ""))).toStartWith("InvalidArgument: user must be");
      expect(await refusal(core.rooms.ban({ user: "ben" }, "town", "cat", undefined, ""))).toStartWith("PermissionDenied: only the room's owners and admins");
      expect(await refusal(core.rooms.ban(owner, "dm:a:b", "a", undefined, ""))).toStartWith("InvalidArgument:");
      expect(await refusal(core.rooms.ban(owner, "uncreated", "ben", undefined, ""))).toStartWith('FailedPrecondition: room "uncreated" has no owners');
      expect(core.rooms.members(owner, "town").banned).toEqual([]);
    });

    test("a server-wide admin moderates any room, one nobody created included", async () => {
      await privateRoom();
      await core.rooms.addMember(admin, "team", "ben");
      await core.send("ann", { room: "lobby" }, "hi", "");
      const ann = await core.subscribe("ann", "test", ["lobby"], {});
      collect(ann);
      await core.rooms.ban(admin, "lobby", "ann", undefined, "");
      expect(await refusal(core.send("ann", { room: "lobby" }, "hi", ""))).toBe('PermissionDenied: you are banned from room "lobby" for good');
      await until(() => ann.closed);
      expect(ann.error?.rawMessage).toBe('you are banned from room "lobby" for good');
      expect(core.rooms.get({ user: "ben" }, "lobby").kind).toBe(RoomKind.PUBLIC);
    });

    test("a deleted room: its streams leave with NotFound, its history is gone, its name starts again at 1", async () => {
      const room = await privateRoom();
      const chat = await core.open("olga", "test");
      const c = collect(chat);
      await core.join(chat, room);
      await core.send("olga", { room }, "secret", "");
      expect(await refusal(core.rooms.delete({ user: "ben" }, room))).toStartWith("PermissionDenied:");
      await core.rooms.delete(owner, room);
      await until(() => c.errors().length > 0);
      expect(c.errors().map((e) => [e.code, e.text])).toEqual([["not_found", 'room "team" was deleted']]);
      expect((await core.history("olga", room, 0n, 0n, 50)).messages).toEqual([]);
      expect((await core.listRooms("olga")).rooms.map((r) => r.name)).not.toContain(room);
      const again = await core.send("ben", { room }, "new", "");
      expect([again.seq, core.rooms.get({ user: "ben" }, room).kind]).toEqual([1n, RoomKind.UNSPECIFIED]);
    });

    test("changes are history entries in seq order: a client that resumes from since_seq learns each one it missed", async () => {
      const room = await privateRoom();
      await core.rooms.addMember(owner, room, "ben");
      await core.send("olga", { room }, "one", "");
      const resumeFrom = (await engine.history.lastSeq(room)) - 0n;
      await core.rooms.setRole(owner, room, "ben", Role.ADMIN);
      await core.rooms.update(owner, room, { topic: "new plans" });
      await core.rooms.mute(owner, room, "cat", undefined);
      await core.send("olga", { room }, "two", "");
      const ben = await core.open("ben", "test");
      const b = collect(ben);
      await core.join(ben, room, resumeFrom);
      await until(() => b.messages(room).length >= 4);
      expect(b.messages(room).map((m) => (m.change ? `${RoomChangeKind[m.change.kind]} ${m.change.user || m.change.room?.topic}` : m.text))).toEqual([
        "ROLE_CHANGED ben",
        "UPDATED new plans",
        "MUTED cat",
        "two",
      ]);
    });
  });

  describe("blocking", () => {
    test("a blocked user's DMs are refused without saying why; neither sees the other's presence; unblock restores", async () => {
      await core.rooms.block({ user: "ann" }, "bob", true);
      expect(core.rooms.blocked({ user: "ann" })).toEqual(["bob"]);
      expect(await refusal(core.send("bob", { toUser: "ann" }, "hi", ""))).toBe('PermissionDenied: you cannot send direct messages to "ann"');
      expect(await refusal(core.send("bob", { room: "dm:ann:bob" }, "hi", ""))).toBe('PermissionDenied: you cannot send direct messages to "ann"');
      // Ann may still write to Bob: a block is hers.
      await core.send("ann", { toUser: "bob" }, "bye", "");
      const ann = await core.open("ann", "test");
      const a = collect(ann);
      await core.join(ann, "lobby");
      const bob = await core.open("bob", "test");
      const b = collect(bob);
      await core.join(bob, "lobby");
      const cat = await core.open("cat", "test");
      await core.join(cat, "lobby");
      const presenceOf = (x: ReturnType<typeof collect>) => x.events.flatMap((e) => (e.kind.case === "presence" ? [e.kind.value.user] : []));
      await until(() => presenceOf(a).includes("cat") && presenceOf(b).includes("cat"));
      expect(presenceOf(a)).not.toContain("bob");
      expect(presenceOf(b)).not.toContain("ann");
      expect((await core.listOnline("ann", "lobby")).map((e) => e.user)).toEqual(["ann", "cat"]);
      expect((await core.listOnline("bob", "")).map((e) => e.user)).toEqual(["bob", "cat"]);
      expect(await refusal(core.rooms.block({ user: "ann" }, "ann", true))).toBe("InvalidArgument: you cannot block yourself");
      await core.rooms.block({ user: "ann" }, "bob", false);
      await core.send("bob", { toUser: "ann" }, "hi again", "");
    });
  });
}
