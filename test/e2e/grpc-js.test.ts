// The server as a third-party gRPC client sees it: @grpc/grpc-js with the .proto files loaded at
// runtime by @grpc/proto-loader, against the real server process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  asUser,
  closeAllClients,
  connect,
  failure,
  grpc,
  openChat,
  openLegacy,
  openSubscribe,
  services,
  unary,
  withServerDeadline,
  type ChatMessage,
} from "../support/grpc-js.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

const T = 20_000; // per-test timeout; every wait inside is shorter and names what it waits for

let server: ServerProcess;
let chat: any; // chat.v1.ChatService
let legacy: any; // chat.ChatService

beforeAll(async () => {
  server = await startServer();
  chat = connect(services.chatV1, server.port);
  legacy = connect(services.legacy, server.port);
}, T);

afterAll(async () => {
  closeAllClients();
  await server?.stop();
});

const nowSeconds = () => Date.now() / 1000;

/** Asserts a unix-seconds value (a string, as longs: String decodes it) is within 10 s of now. */
function expectNow(seconds: string | number) {
  expect(Math.abs(Number(seconds) - nowSeconds())).toBeLessThan(10);
}

/** Resolves once ListOnline (asked as `asker`) shows every one of `users` online. */
async function waitOnline(users: string[], asker = "watcher") {
  await eventually(
    async () => {
      const res = await unary(chat, "ListOnline", {}, asUser(asker));
      const online = res.users.map((u: any) => u.user);
      return users.every((u) => online.includes(u));
    },
    5000,
    `${users.join(", ")} online`,
  );
}

describe("chat.v1.ChatService over grpc-js", () => {
  test(
    "Send, History, ListRooms and ListOnline return what was posted",
    async () => {
      const room = "gj-unary";
      const first = await unary(chat, "Send", { room, text: "hello", client_msg_id: "u1" }, asUser("ursula"));
      expect(first.message).toMatchObject({ room, seq: "1", from: "ursula", text: "hello", client_msg_id: "u1", region: "local" });
      expect(first.message.id).toMatch(/^[0-9a-f-]{36}$/);
      expectNow(first.message.sent_at.seconds);

      const second = await unary(chat, "Send", { room, text: "again", client_msg_id: "u2" }, asUser("victor"));
      expect(second.message.seq).toBe("2");
      // A retry with the same idempotency key returns the original message, not a new one.
      const retry = await unary(chat, "Send", { room, text: "hello", client_msg_id: "u1" }, asUser("ursula"));
      expect(retry.message.id).toBe(first.message.id);
      expect(retry.message.seq).toBe("1");

      const history = await unary(chat, "History", { room }, asUser("walter"));
      expect(history.messages.map((m: any) => [m.seq, m.from, m.text])).toEqual([
        ["1", "ursula", "hello"],
        ["2", "victor", "again"],
      ]);
      expect(history.has_more).toBe(false);
      const page = await unary(chat, "History", { room, before_seq: "2", limit: 1 }, asUser("walter"));
      expect(page.messages.map((m: any) => m.seq)).toEqual(["1"]);

      // A DM by Send: its room is dm:<a>:<b> with the ids sorted, whoever sends.
      const dm = await unary(chat, "Send", { to_user: "ursula", text: "psst" }, asUser("victor"));
      expect(dm.message.room).toBe("dm:ursula:victor");

      const rooms = await unary(chat, "ListRooms", {}, asUser("ursula"));
      const byName = Object.fromEntries(rooms.rooms.map((r: any) => [r.name, r]));
      expect(byName[room]).toMatchObject({ name: room, last_seq: "2" });
      expect(byName["dm:ursula:victor"]).toMatchObject({ last_seq: "1", members: 2 });
      // Someone else's DM rooms are not listed.
      const others = await unary(chat, "ListRooms", {}, asUser("walter"));
      expect(others.rooms.map((r: any) => r.name)).toContain(room);
      expect(others.rooms.map((r: any) => r.name)).not.toContain("dm:ursula:victor");

      // ListOnline: a Chat stream makes its user online, with one session, in this region.
      const s = openChat(chat, "xavier");
      await s.reader.until((r) => r.of("ready").length === 1, "ready");
      const online = await unary(chat, "ListOnline", {}, asUser("walter"));
      expect(online.users.find((u: any) => u.user === "xavier")).toEqual({ user: "xavier", region: "local", sessions: 1 });
      s.end();
      expect((await s.reader.finished).code).toBe(grpc.status.OK);
      await eventually(
        async () => {
          const res = await unary(chat, "ListOnline", {}, asUser("walter"));
          return !res.users.some((u: any) => u.user === "xavier");
        },
        5000,
        "xavier offline after closing his stream",
      );
    },
    T,
  );

  test(
    "Chat stream: ready, join, send with ack, ping/pong, presence of a second user",
    async () => {
      const room = "gj-bidi";
      const a = openChat(chat, "yolanda");
      const [ready] = await a.reader.until((r) => r.of("ready").length === 1 && r.of("ready"), "ready");
      expect(ready).toMatchObject({ user: "yolanda", region: "local" });
      expect(ready.session_id).toMatch(/^[0-9a-f-]{36}$/);

      a.join(room);
      const [joined] = await a.reader.until((r) => r.of("joined").length === 1 && r.of("joined"), "joined");
      expect(joined).toEqual({ room, last_seq: "0" });

      a.ping("n-1");
      const [pong] = await a.reader.until((r) => r.of("pong").length === 1 && r.of("pong"), "pong");
      expect(pong.nonce).toBe("n-1");

      a.say({ room }, "first", "c1");
      const [ack] = await a.reader.until((r) => r.of("ack").length === 1 && r.of("ack"), "ack");
      expect(ack.client_msg_id).toBe("c1");
      expect(ack.message).toMatchObject({ room, seq: "1", from: "yolanda", text: "first", client_msg_id: "c1" });
      // The sender gets its own message as an event too, like everyone in the room.
      const [own] = await a.reader.until((r) => r.messages(room).length === 1 && r.messages(room), "own message");
      expect(own.id).toBe(ack.message.id);

      // A second user joins: the first sees presence "joined", and the second gets what is said next.
      const b = openChat(chat, "zach");
      b.join(room);
      await b.reader.until((r) => r.of("joined").length === 1, "zach joined");
      await a.reader.until((r) => r.presence(room, "zach", "PRESENCE_ACTION_JOINED").length === 1, "presence joined");
      expect(a.reader.presence(room, "zach", "PRESENCE_ACTION_JOINED")[0].region).toBe("local");

      a.say({ room }, "second", "c2");
      const [got] = await b.reader.until((r) => r.messages(room).length === 1 && r.messages(room), "message at zach");
      expect(got).toMatchObject({ room, seq: "2", from: "yolanda", text: "second" });
      expectNow(got.sent_at.seconds);
      // Joined without since_seq: live messages only, so zach never saw seq 1.
      expect(b.reader.messages(room).map((m) => m.seq)).toEqual(["2"]);

      // Typing reaches the others in the room, not the typist.
      b.send({ typing: { room } });
      await a.reader.until((r) => r.of("typing").length === 1, "typing");
      expect(a.reader.of("typing")).toEqual([{ room, user: "zach" }]);
      expect(b.reader.of("typing")).toEqual([]);

      // Leaving by request, then coming back and leaving by disconnecting: "left" each time.
      b.leave(room);
      await a.reader.until((r) => r.presence(room, "zach", "PRESENCE_ACTION_LEFT").length === 1, "presence left (leave)");
      b.join(room);
      await a.reader.until((r) => r.presence(room, "zach", "PRESENCE_ACTION_JOINED").length === 2, "presence joined again");
      b.end();
      expect((await b.reader.finished).code).toBe(grpc.status.OK);
      await a.reader.until((r) => r.presence(room, "zach", "PRESENCE_ACTION_LEFT").length === 2, "presence left (disconnect)");

      // A bad request is an error event; the stream stays open and keeps answering.
      a.join("no spaces allowed");
      const [err] = await a.reader.until((r) => r.of("error").length === 1 && r.of("error"), "error event");
      expect(err).toMatchObject({ code: "invalid_argument", room: "no spaces allowed" });
      a.ping("n-2");
      await a.reader.until((r) => r.of("pong").some((p) => p.nonce === "n-2"), "pong after error");

      expect(a.reader.messages(room).map((m) => m.seq)).toEqual(["1", "2"]);
      a.end();
      expect((await a.reader.finished).code).toBe(grpc.status.OK);
    },
    T,
  );

  test(
    "Chat stream: join with since_seq replays history, then live, without gap or duplicate",
    async () => {
      const room = "gj-resume";
      for (const text of ["m1", "m2", "m3"]) await unary(chat, "Send", { room, text }, asUser("abel"));
      const s = openChat(chat, "bea");
      s.join(room, 1);
      await s.reader.until((r) => r.messages(room).length === 2, "replayed messages");
      await unary(chat, "Send", { room, text: "m4" }, asUser("abel"));
      await s.reader.until((r) => r.messages(room).length === 3, "live message");
      expect(s.reader.messages(room).map((m) => [m.seq, m.text])).toEqual([
        ["2", "m2"],
        ["3", "m3"],
        ["4", "m4"],
      ]);
      expect(s.reader.of("joined")).toEqual([{ room, last_seq: "3" }]);
      s.end();
      await s.reader.finished;
    },
    T,
  );

  test(
    "Subscribe streams a room's events; since_seq resumes",
    async () => {
      const room = "gj-sub";
      await unary(chat, "Send", { room, text: "before" }, asUser("carl"));
      const live = openSubscribe(chat, "dora", { rooms: [room] });
      const resumed = openSubscribe(chat, "emil", { rooms: [room], since_seq: { [room]: "0" } });
      for (const sub of [live, resumed]) {
        const [joined] = await sub.reader.until((r) => r.of("joined").length === 1 && r.of("joined"), "joined");
        expect(joined).toEqual({ room, last_seq: "1" });
      }
      expect(live.reader.of("ready")[0].user).toBe("dora");

      await unary(chat, "Send", { room, text: "after" }, asUser("carl"));
      await live.reader.until((r) => r.messages(room).length === 1, "live message");
      await resumed.reader.until((r) => r.messages(room).length === 2, "history and live message");
      expect(live.reader.messages(room).map((m) => [m.seq, m.from, m.text])).toEqual([["2", "carl", "after"]]);
      expect(resumed.reader.messages(room).map((m) => [m.seq, m.text])).toEqual([
        ["1", "before"],
        ["2", "after"],
      ]);
      // Subscribers are present in the room (presence is recorded just after "joined" is sent).
      await eventually(
        async () => {
          const online = await unary(chat, "ListOnline", { room }, asUser("carl"));
          return online.users.map((u: any) => u.user).join() === "dora,emil";
        },
        5000,
        "dora and emil online in the room",
      );
      const rooms = await unary(chat, "ListRooms", {}, asUser("carl"));
      expect(rooms.rooms.find((r: any) => r.name === room)).toEqual({
        name: room,
        members: 2,
        online: 2,
        last_seq: "2",
        // A room nobody created: no kind, no words, no role.
        kind: "ROOM_KIND_UNSPECIFIED",
        title: "",
        topic: "",
        your_role: "ROLE_UNSPECIFIED",
        // Carl sent both messages: nothing unread for him.
        last_read_seq: "0",
        unread: 0,
        unread_mentions: 0,
      });

      live.cancel();
      resumed.cancel();
      expect((await live.reader.finished).code).toBe(grpc.status.CANCELLED);
      await resumed.reader.finished;
      await eventually(async () => (await unary(chat, "ListOnline", { room }, asUser("carl"))).users.length === 0, 5000, "room empty after cancel");
    },
    T,
  );

  test(
    "status codes: INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED",
    async () => {
      const bad = await failure(unary(chat, "History", { room: "café ☕" }, asUser("fay")));
      expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
      // grpc-message is percent-encoded on the wire per the gRPC spec (only bytes outside printable
      // ASCII, and "%"), so non-ASCII and ":" ";" "," all come back intact through grpc-js.
      expect(bad.details).toBe('room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "café ☕")');

      const unsorted = await failure(unary(chat, "History", { room: "dm:zed:amy" }, asUser("amy")));
      expect(unsorted.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(unsorted.details).toStartWith('"dm:zed:amy" is not a direct-message room: use dm:<a>:<b>');

      const denied = await failure(unary(chat, "History", { room: "dm:gus:hal" }, asUser("fay")));
      expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.details).toBe('room "dm:gus:hal" is a direct conversation between two other users');

      // A private room, made and refused through grpc-js.
      const made = await unary(chat, "CreateRoom", { name: "gj-private", kind: "ROOM_KIND_PRIVATE" }, asUser("gus"));
      expect([made.room.kind, made.room.your_role, made.entry.change.kind]).toEqual(["ROOM_KIND_PRIVATE", "ROLE_OWNER", "ROOM_CHANGE_KIND_CREATED"]);
      const outsider = await failure(unary(chat, "Send", { room: "gj-private", text: "let me in" }, asUser("fay")));
      expect([outsider.code, outsider.details]).toEqual([grpc.status.PERMISSION_DENIED, 'room "gj-private" is private: an owner or admin must add you first']);

      for (const [method, req] of [
        ["History", { room: "lobby" }],
        ["Send", { room: "lobby", text: "anonymous" }],
        ["ListRooms", {}],
      ] as const) {
        const e = await failure(unary(chat, method, req));
        expect(e.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(e.details).toContain("x-user");
      }
      const noUser = openChat(chat, undefined);
      expect((await noUser.reader.finished).code).toBe(grpc.status.UNAUTHENTICATED);

      const badHeader = await failure(unary(chat, "ListRooms", {}, asUser("has space")));
      expect(badHeader.code).toBe(grpc.status.INVALID_ARGUMENT);

      const self = await failure(unary(chat, "Send", { to_user: "fay", text: "me" }, asUser("fay")));
      expect(self.code).toBe(grpc.status.INVALID_ARGUMENT);
      const empty = await failure(unary(chat, "Send", { room: "lobby", text: "" }, asUser("fay")));
      expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
      const stray = openSubscribe(chat, "fay", { rooms: ["a"], since_seq: { b: "1" } });
      expect((await stray.reader.finished).code).toBe(grpc.status.INVALID_ARGUMENT);
      // Nothing was written by the failed calls.
      expect((await unary(chat, "History", { room: "lobby" }, asUser("fay"))).messages).toEqual([]);
    },
    T,
  );

  test(
    "a Subscribe with a 300 ms deadline ends on time; the server drops it and keeps serving",
    async () => {
      const room = "gj-deadline";
      const started = Date.now();
      const sub = openSubscribe(chat, "ivan", { rooms: [room] }, { deadline: Date.now() + 300 });
      await sub.reader.until((r) => r.of("joined").length === 1, "joined");
      const status = await sub.reader.finished;
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(5000);
      // Whichever timer fires first, the client's or the server's (from grpc-timeout), says so.
      expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      // The server dropped the session: ivan is no longer in the room.
      await eventually(async () => (await unary(chat, "ListOnline", { room }, asUser("jane"))).users.length === 0, 5000, "ivan gone");
      // And it still serves unary and streaming calls.
      const sent = await unary(chat, "Send", { room, text: "still here" }, asUser("jane"));
      expect(sent.message.seq).toBe("1");
      const again = openSubscribe(chat, "ivan", { rooms: [room], since_seq: { [room]: "0" } });
      const [m] = await again.reader.until((r) => r.messages(room).length === 1 && r.messages(room), "message after deadline");
      expect(m.text).toBe("still here");
      again.cancel();
      await again.reader.finished;
    },
    T,
  );

  // Here only the server knows the deadline (grpc-timeout), so the status is the server's.
  test(
    "a server-side deadline ends Subscribe and Chat with DEADLINE_EXCEEDED, not OK",
    async () => {
      const sub = openSubscribe(chat, withServerDeadline(asUser("kurt"), 300), { rooms: ["gj-server-deadline"] });
      const bidi = openChat(chat, withServerDeadline(asUser("kurt"), 300));
      for (const { reader } of [sub, bidi]) {
        const status = await reader.finished;
        expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      }
    },
    T,
  );
});

describe("old API chat.ChatService/ChatStream over grpc-js", () => {
  const serverSaid = (m: ChatMessage) => m.user === "Server";

  test(
    "list, hint before connect, and DMs both ways between two old clients",
    async () => {
      const alice = openLegacy(legacy, { user: "alice" });
      const bob = openLegacy(legacy, { user: "bob" });
      await waitOnline(["alice", "bob"]);

      alice.say("list");
      const [list] = await alice.reader.until((r) => r.from("Server").length === 1 && r.from("Server"), "reply to list");
      expect(list.message).toStartWith("Online users: ");
      expect(list.message.slice("Online users: ".length).split(", ")).toContain("bob");
      expect(list.message).not.toContain("alice");
      expect(list.target_id).toBe("alice");
      expectNow(list.timestamp);

      // Text with no partner yet gets a hint from Server, not an error: the stream goes on.
      alice.say("hello?");
      const hint = await alice.reader.until((r) => r.from("Server")[1], "hint");
      expect(hint.message).toContain("connect <id>");
      expect(alice.reader.done).toBe(false);

      alice.say("connect bob");
      const connected = await alice.reader.until((r) => r.from("Server")[2], "connect reply");
      expect(connected.message).toBe("Connected to bob.");

      alice.say("hi bob");
      const [atBob] = await bob.reader.until((r) => r.from("alice").length === 1 && r.from("alice"), "alice's DM at bob");
      expect(atBob).toMatchObject({ user: "alice", target_id: "bob", message: "hi bob" });
      expectNow(atBob.timestamp);

      bob.say("connect alice");
      bob.say("hi alice");
      const [atAlice] = await alice.reader.until((r) => r.from("bob").length === 1 && r.from("bob"), "bob's DM at alice");
      expect(atAlice).toMatchObject({ user: "bob", target_id: "alice", message: "hi alice" });
      expectNow(atAlice.timestamp);

      // Old clients print what they type themselves: nobody gets their own lines back.
      expect(alice.reader.from("alice")).toEqual([]);
      expect(bob.reader.items.filter((m) => !serverSaid(m)).map((m) => m.message)).toEqual(["hi bob"]);
      // The DMs are stored in the same room as v1 DMs.
      const history = await unary(chat, "History", { room: "dm:alice:bob" }, asUser("alice"));
      expect(history.messages.map((m: any) => [m.seq, m.from, m.text])).toEqual([
        ["1", "alice", "hi bob"],
        ["2", "bob", "hi alice"],
      ]);

      alice.end();
      bob.end();
      expect((await alice.reader.finished).code).toBe(grpc.status.OK);
      expect((await bob.reader.finished).code).toBe(grpc.status.OK);
    },
    T,
  );

  test(
    "an old client and a v1 Chat stream talk in the same DM room",
    async () => {
      const oldUser = "olga";
      const newUser = "nina";
      const room = "dm:nina:olga"; // the ids sorted
      const v1 = openChat(chat, newUser);
      await v1.reader.until((r) => r.of("ready").length === 1, "ready");
      const old = openLegacy(legacy, { user: oldUser });
      await waitOnline([oldUser, newUser]);

      // v1 -> old, by to_user.
      v1.say({ to_user: oldUser }, "hello olga", "n1");
      const [ack] = await v1.reader.until((r) => r.of("ack").length === 1 && r.of("ack"), "ack");
      expect(ack.message).toMatchObject({ room, seq: "1", from: newUser, text: "hello olga" });
      const [got] = await old.reader.until((r) => r.from(newUser).length === 1 && r.from(newUser), "DM at the old client");
      expect(got).toMatchObject({ user: newUser, target_id: oldUser, message: "hello olga" });
      expectNow(got.timestamp);

      // old -> v1: message events in the DM room, seq up by one each time.
      old.say(`connect ${newUser}`);
      for (const text of ["one", "two", "three"]) old.say(text);
      await v1.reader.until((r) => r.messages(room).filter((m) => m.from === oldUser).length === 3, "old client's messages");
      const fromOld = v1.reader.messages(room).filter((m) => m.from === oldUser);
      expect(fromOld.map((m) => m.text)).toEqual(["one", "two", "three"]);
      expect(fromOld.map((m) => m.seq)).toEqual(["2", "3", "4"]);
      // The v1 session was joined to the DM room by its first message and saw all of it, in order.
      expect(v1.reader.messages(room).map((m) => m.seq)).toEqual(["1", "2", "3", "4"]);
      for (const m of fromOld) {
        expect(m.room).toBe(room);
        expectNow(m.sent_at.seconds);
      }
      expect(old.reader.from("Server").map((m) => m.message)).toEqual([`Connected to ${newUser}.`]);

      // The old client hangs up (RST_STREAM): the v1 client sees it leave the DM room.
      old.cancel();
      expect((await old.reader.finished).code).toBe(grpc.status.CANCELLED);
      await v1.reader.until((r) => r.presence(room, oldUser, "PRESENCE_ACTION_LEFT").length === 1, "old client left");
      v1.end();
      expect((await v1.reader.finished).code).toBe(grpc.status.OK);
    },
    T,
  );

  test(
    "a first message with target_id connects at once",
    async () => {
      const quinn = openLegacy(legacy, { user: "quinn", target_id: "rosa", message: "hi rosa" });
      const [reply] = await quinn.reader.until((r) => r.from("Server").length === 1 && r.from("Server"), "connect reply");
      expect(reply.message).toBe("Connected to rosa, who is not online now; your messages are kept for them.");
      await eventually(
        async () => {
          const h = await unary(chat, "History", { room: "dm:quinn:rosa" }, asUser("rosa"));
          return h.messages.length === 1 && h.messages[0].text === "hi rosa";
        },
        5000,
        "first message's text sent to rosa",
      );
      quinn.end();
      await quinn.reader.finished;
    },
    T,
  );

  test(
    "a bad connect is a command, never a delivery, and drops the previous partner",
    async () => {
      const dave = openLegacy(legacy, { user: "dave", message: "connect rosa" });
      const server = (n: number) => dave.reader.until((r) => r.from("Server")[n], `reply ${n}`);
      expect((await server(0)).message).toStartWith("Connected to rosa");
      dave.say("connect bob smith");
      expect((await server(1)).message).toBe(
        'Not connected: partner id must be 1 to 64 characters of A-Z a-z 0-9 _ . - (got "bob smith"). You are no longer connected to rosa.',
      );
      dave.say("connect dave");
      expect((await server(2)).message).toBe("Not connected: you cannot connect to yourself.");
      dave.say("this must go nowhere");
      expect((await server(3)).message).toContain("connect <id>");
      const h = await unary(chat, "History", { room: "dm:dave:rosa" }, asUser("rosa"));
      expect(h.messages.map((m: any) => m.text)).toEqual([]);
      dave.end();
      await dave.reader.finished;
    },
    T,
  );

  test(
    "in dev mode an x-user header names the old client, and a different first user is refused",
    async () => {
      const hana = openLegacy(legacy, { message: "list" }, asUser("hana"));
      const [reply] = await hana.reader.until((r) => r.from("Server").length === 1 && r.from("Server"), "reply to list");
      expect(reply.target_id).toBe("hana");
      hana.end();
      expect((await hana.reader.finished).code).toBe(grpc.status.OK);

      const forged = openLegacy(legacy, { user: "mallory" }, asUser("hana"));
      expect((await forged.reader.finished).code).toBe(grpc.status.PERMISSION_DENIED);
      expect(forged.reader.items).toEqual([]);
    },
    T,
  );

  test(
    "a deadline ends an old stream with DEADLINE_EXCEEDED, whichever timer fires; the server keeps serving",
    async () => {
      // grpc-js's deadline: its own timer, and grpc-timeout for the server.
      const timed = openLegacy(legacy, { user: "tina", message: "list" }, new grpc.Metadata(), { deadline: Date.now() + 500 });
      // A deadline only the server knows: the status can only be the server's.
      const serverTimed = openLegacy(legacy, { user: "uma", message: "list" }, withServerDeadline(new grpc.Metadata(), 500));
      for (const c of [timed, serverTimed]) await c.reader.until((r) => r.from("Server").length === 1, "reply to list");
      const [a, b] = await Promise.all([timed.reader.finished, serverTimed.reader.finished]);
      expect(a.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(b.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(b.details).toBe("the operation timed out");
      await eventually(
        async () => {
          const online = (await unary(chat, "ListOnline", {}, asUser("watcher"))).users.map((u: any) => u.user);
          return !online.includes("tina") && !online.includes("uma");
        },
        5000,
        "tina and uma offline",
      );
      const again = openLegacy(legacy, { user: "tina", message: "list" });
      await again.reader.until((r) => r.from("Server").length === 1, "reply after the deadline");
      again.end();
      expect((await again.reader.finished).code).toBe(grpc.status.OK);
    },
    T,
  );

  // "Server" is reserved: otherwise its DMs would reach old clients as the server's own replies.
  test(
    "a user named Server cannot pass for the server in an old client's stream",
    async () => {
      const fake = openLegacy(legacy, { user: "Server", target_id: "pat" });
      await fake.reader.until((r) => r.done || r.items.length > 0, "a refusal or a reply");
      fake.cancel();
      await fake.reader.finished;
      expect(fake.reader.items).toEqual([]);
      expect((await fake.reader.finished).code).toBe(grpc.status.INVALID_ARGUMENT);
      const sent = await failure(unary(chat, "Send", { to_user: "pat", text: "Nobody else is online." }, asUser("Server")));
      expect(sent.code).not.toBe(grpc.status.OK);
    },
    T,
  );

  test(
    "a first message without user fails with INVALID_ARGUMENT",
    async () => {
      const anon = openLegacy(legacy, { message: "who am I" });
      const status = await anon.reader.finished;
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toContain("user");
      expect(anon.reader.items).toEqual([]);
      const invalid = openLegacy(legacy, { user: "not:valid" });
      expect((await invalid.reader.finished).code).toBe(grpc.status.INVALID_ARGUMENT);
    },
    T,
  );
});

describe("health and reflection over grpc-js", () => {
  test(
    "Health/Check is SERVING for the server and the chat services; unknown is NOT_FOUND",
    async () => {
      const health = connect(services.health, server.port);
      for (const service of ["", "chat.v1.ChatService", "chat.ChatService"]) {
        expect(await unary(health, "Check", { service })).toEqual({ status: "SERVING" });
      }
      const unknown = await failure(unary(health, "Check", { service: "no.Such" }));
      expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    },
    T,
  );

  test(
    "reflection list_services names chat.v1.ChatService and chat.ChatService",
    async () => {
      const reflection = connect(services.reflection, server.port);
      const call = reflection.ServerReflectionInfo();
      const responses: any[] = [];
      call.on("data", (r: any) => responses.push(r));
      const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
      call.on("error", () => {});
      call.write({ list_services: "" });
      call.write({ file_containing_symbol: "chat.v1.ChatService" });
      await eventually(() => responses.length === 2, 5000, "two reflection responses");
      call.end();
      expect((await ended).code).toBe(grpc.status.OK);

      expect(responses[0].message_response).toBe("list_services_response");
      const names = responses[0].list_services_response.service.map((s: any) => s.name);
      expect(names).toContain("chat.v1.ChatService");
      expect(names).toContain("chat.ChatService");
      expect(names).toContain("grpc.health.v1.Health");
      // The file for a symbol comes with its imports (google/protobuf/timestamp.proto).
      expect(responses[1].message_response).toBe("file_descriptor_response");
      const files = responses[1].file_descriptor_response.file_descriptor_proto.map((b: Buffer) => b.toString("latin1"));
      expect(files[0]).toContain("chat/v1/chat.proto");
      expect(files.some((f: string) => f.includes("google/protobuf/timestamp.proto"))).toBe(true);
    },
    T,
  );
});

describe("shutdown as grpc-js sees it", () => {
  test(
    "SIGTERM ends open v1 and old streams with UNAVAILABLE and the process exits 0",
    async () => {
      const own = await startServer();
      try {
        const v1Client = connect(services.chatV1, own.port);
        const oldClient = connect(services.legacy, own.port);
        const v1 = openChat(v1Client, "kim");
        await v1.reader.until((r) => r.of("ready").length === 1, "ready");
        const old = openLegacy(oldClient, { user: "lee", message: "list" });
        await old.reader.until((r) => r.from("Server").length === 1, "reply to list");
        const exited = own.stop("SIGTERM");
        for (const status of [await v1.reader.finished, await old.reader.finished]) {
          expect(status.code).toBe(grpc.status.UNAVAILABLE);
          expect(status.details).toContain("shutting down");
        }
        expect(await exited).toBe(0);
      } finally {
        await own.stop("SIGKILL");
      }
    },
    T,
  );
});
