// The chat core on the embedded engine, without sockets.
import { eventually } from "../../test/support/wait.ts";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ChatRequestSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { mintToken, TEST_SECRET } from "../../test/support/tokens.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { createAuthenticator } from "./auth.ts";
import type { Engine } from "../engine/engine.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import { createLogger } from "../log.ts";
import type { Limits } from "../config.ts";
import { ChatCore } from "./chat.ts";
import type { Session } from "./session.ts";

const limits = TEST_LIMITS;

let engine: Engine;
let core: ChatCore;
const make = (over: Partial<Limits> = {}, e?: Engine) =>
  new ChatCore({ engine: e ?? engine, region: "test", limits: { ...limits, ...over }, log: createLogger("error") });

beforeEach(() => {
  engine = createEmbeddedEngine(":memory:");
  core = make();
});
afterEach(async () => {
  await core.drain();
  await engine.close();
});

/** Reads a session's events in the background. */
function collect(s: Session) {
  const events: ChatEvent[] = [];
  const box: { error?: ConnectError } = {};
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  // As a transport reads it: told when there is something to take, or when the session ended.
  const read = () => {
    events.push(...s.take());
    if (s.closed && s.pending === 0) {
      box.error = s.error;
      finish();
    }
  };
  s.attach({ readable: read });
  read();
  const messages = (room: string) => events.flatMap((e) => (e.kind.case === "message" && e.kind.value.room === room ? [e.kind.value] : []));
  return { events, box, done, messages };
}

const until = (check: () => boolean, ms = 3000) => eventually(check, ms, "condition", 2);

const seqs = (ms: { seq: bigint }[]) => ms.map((m) => Number(m.seq));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("delivery", () => {
  test("resume with since_seq while messages keep arriving: no gap, no duplicate at the seam", async () => {
    for (let i = 1; i <= 300; i++) await core.send("ann", { room: "r" }, `m${i}`, "");
    const ben = await core.open("ben", "test");
    const got = collect(ben);
    const sending = (async () => {
      for (let i = 301; i <= 400; i++) await core.send("ann", { room: "r" }, `m${i}`, "");
    })();
    await core.join(ben, "r", 10n);
    await sending;
    await until(() => got.messages("r").length >= 390);
    await Bun.sleep(20);
    expect(seqs(got.messages("r"))).toEqual(range(11, 400));
  });

  test("join without since_seq delivers live messages only", async () => {
    await core.send("ann", { room: "r" }, "old", "");
    const ben = await core.open("ben", "test");
    const got = collect(ben);
    await core.join(ben, "r");
    await core.send("ann", { room: "r" }, "new", "");
    await until(() => got.messages("r").length === 1);
    expect(got.messages("r")[0].text).toBe("new");
    const joined = got.events.find((e) => e.kind.case === "joined");
    expect(joined?.kind.value).toMatchObject({ room: "r", lastSeq: 1n });
  });

  test("a message the bus lost is recovered from history, in order", async () => {
    const ben = await core.open("ben", "test");
    const got = collect(ben);
    await core.join(ben, "r");
    const publish = engine.bus.publish.bind(engine.bus);
    let dropped = false;
    engine.bus.publish = async (topic, event) => {
      if (!dropped && event.kind.case === "message" && event.kind.value.seq === 2n) {
        dropped = true;
        return;
      }
      return publish(topic, event);
    };
    for (let i = 1; i <= 5; i++) await core.send("ann", { room: "r" }, `m${i}`, "");
    await until(() => got.messages("r").length === 5);
    expect(dropped).toBe(true);
    expect(seqs(got.messages("r"))).toEqual([1, 2, 3, 4, 5]);
  });

  test("a retried client_msg_id is acknowledged with the original and delivered once", async () => {
    const ben = await core.open("ben", "test");
    const got = collect(ben);
    await core.join(ben, "r");
    const a = await core.send("ann", { room: "r" }, "once", "k");
    const b = await core.send("ann", { room: "r" }, "once", "k");
    await core.send("ann", { room: "r" }, "after", "");
    await until(() => got.messages("r").length === 2);
    expect(b.id).toBe(a.id);
    expect(got.messages("r").map((m) => m.text)).toEqual(["once", "after"]);
  });

  test("a direct message reaches the other user without a join", async () => {
    const ben = await core.open("ben", "test");
    const got = collect(ben);
    await core.send("ann", { toUser: "ben" }, "psst", "");
    await core.send("ann", { toUser: "ben" }, "again", "");
    await until(() => got.messages("dm:ann:ben").length === 2);
    expect(got.messages("dm:ann:ben").map((m) => [m.from, m.text, Number(m.seq)])).toEqual([
      ["ann", "psst", 1],
      ["ann", "again", 2],
    ]);
    const { rooms } = await core.listRooms("ben");
    expect(rooms.find((r) => r.name === "dm:ann:ben")).toMatchObject({ members: 2, lastSeq: 2n });
  });
});

describe("limits", () => {
  test("a consumer that falls behind is ended with ResourceExhausted; others keep receiving", async () => {
    const small = make({ sessionQueue: 20 });
    const slow = await small.open("slow", "test");
    const fast = await small.open("fast", "test");
    const got = collect(fast);
    await small.join(slow, "r");
    await small.join(fast, "r");
    for (let i = 1; i <= 30; i++) await small.send("ann", { room: "r" }, `m${i}`, "");
    await until(() => got.messages("r").length === 30);
    expect(slow.closed).toBe(true);
    const late = collect(slow);
    await late.done;
    expect(late.box.error?.code).toBe(Code.ResourceExhausted);
    expect(late.box.error?.rawMessage).toContain("resume with since_seq");
    expect(late.events).toEqual([]);
    await small.drain();
  });

  test("a session joins at most maxRoomsPerSession rooms", async () => {
    const s = await core.open("ann", "test");
    for (let i = 0; i < 4; i++) await core.join(s, `room${i}`);
    const err = await core.join(s, "room4").catch((e) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.code).toBe(Code.ResourceExhausted);
    await core.leave(s, "room0");
    await core.join(s, "room4");
  });

  test("the send rate is limited per user", async () => {
    const limited = make({ ratePerSecond: 1, rateBurst: 3 });
    for (let i = 0; i < 3; i++) await limited.send("ann", { room: "r" }, "ok", "");
    const err = await limited.send("ann", { room: "r" }, "too many", "").catch((e) => e);
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain("rate limit");
    await limited.send("ben", { room: "r" }, "ben is fine", "");
    await limited.drain();
  });

  test("joins and leaves are limited per user, and a Subscribe call counts as one", async () => {
    const limited = make({ joinRatePerSecond: 1, joinBurst: 3, maxRoomsPerSession: 10 });
    const s = await limited.open("ann", "test");
    await limited.join(s, "a");
    await limited.leave(s, "a");
    const sub = await limited.subscribe("ann", "test", ["x", "y", "z"], {});
    const err = await limited.join(s, "b").catch((e) => e);
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/^rate limit: at most 1 joins and leaves per second \(bursts of 3\); retry in \d+ ms$/);
    expect((await limited.subscribe("ann", "test", ["x"], {}).catch((e) => e)).code).toBe(Code.ResourceExhausted);
    await limited.join(await limited.open("ben", "test"), "b");
    expect([...sub.feeds.keys()]).toEqual(["x", "y", "z"]);
    await limited.drain();
  });

  test("History, ListRooms and ListOnline share a per-user read limit", async () => {
    const limited = make({ readRatePerSecond: 1, readBurst: 3 });
    await limited.history("ann", "r", 0n, undefined, 10);
    await limited.listRooms("ann");
    await limited.listOnline("ann", "");
    for (const call of [() => limited.history("ann", "r", 0n, undefined, 10), () => limited.listRooms("ann"), () => limited.listOnline("ann", "r")]) {
      const err = await call().catch((e) => e);
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toContain("reads (History, ListRooms, ListOnline, GetRoom, ListMembers, MarkRead) per second");
    }
    await limited.history("ben", "r", 0n, undefined, 10);
    await limited.drain();
  });
});

describe("history and rooms", () => {
  test("after_seq 0 reads from the start; unset reads the newest page", async () => {
    for (let i = 1; i <= 5; i++) await core.send("ann", { room: "h" }, `m${i}`, "");
    const texts = (p: { messages: { text: string }[] }) => p.messages.map((m) => m.text);
    expect(texts(await core.history("ann", "h", 0n, 0n, 2))).toEqual(["m1", "m2"]);
    expect(texts(await core.history("ann", "h", 0n, undefined, 2))).toEqual(["m4", "m5"]);
  });

  test("subscribing to rooms without messages stores none; ListRooms pages", async () => {
    const s = await core.subscribe("ann", "test", ["empty1", "empty2", "empty3"], {});
    expect((await core.listRooms("ann")).rooms).toEqual([]);
    // Its first message makes the room, with those who were in it as members.
    await core.send("ben", { room: "empty2" }, "first", "");
    expect((await core.listRooms("ann")).rooms).toMatchObject([{ name: "empty2", members: 1, online: 1, lastSeq: 1n }]);
    for (const r of ["r1", "r2", "r3"]) await core.send("ann", { room: r }, "hi", "");
    const first = await core.listRooms("ann", 2);
    expect(first.rooms.map((r) => r.name)).toEqual(["empty2", "r1"]);
    const second = await core.listRooms("ann", 2, first.nextPageToken);
    expect(second).toMatchObject({ rooms: [{ name: "r2" }, { name: "r3" }], nextPageToken: "" });
    expect((await core.listRooms("ann", 501).catch((e) => e)).code).toBe(Code.InvalidArgument);
    await core.close(s);
  });
});

describe("presence", () => {
  test("joined on a user's first session in a room, left after the last", async () => {
    const watcher = await core.open("zed", "test");
    const got = collect(watcher);
    await core.join(watcher, "r");
    const a1 = await core.open("ann", "test");
    const a2 = await core.open("ann", "test");
    await core.join(a1, "r");
    await core.join(a2, "r");
    expect((await core.listOnline("zed", "r")).map((e) => [e.user, e.sessions])).toEqual([
      ["ann", 2],
      ["zed", 1],
    ]);
    await core.close(a1);
    await core.leave(a2, "r");
    const presence = () => got.events.flatMap((e) => (e.kind.case === "presence" && e.kind.value.user === "ann" ? [e.kind.value.action] : []));
    await until(() => presence().length === 2);
    expect(presence()).toEqual([1, 2]);
    expect((await core.listOnline("zed", "r")).map((e) => e.user)).toEqual(["zed"]);
    expect((await core.listOnline("zed", "")).map((e) => e.user)).toEqual(["ann", "zed"]);
  });

  test("join/leave churn costs the other members a bounded number of presence events, and the net state is right", async () => {
    const watcher = await core.open("zed", "test");
    const got = collect(watcher);
    await core.join(watcher, "busy");
    const churners = await Promise.all(["c1", "c2", "c3"].map((u) => core.open(u, "test")));
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
      for (const c of churners) {
        await core.join(c, "busy");
        await core.leave(c, "busy");
      }
    }
    await core.join(churners[0], "busy");
    const seconds = (performance.now() - started) / 1000;
    const presence = () => got.events.filter((e) => e.kind.case === "presence" && e.kind.value.user !== "zed");
    // The net change (c1 in the room) arrives, and the rest was coalesced away.
    await until(
      () => presence().some((e) => e.kind.case === "presence" && e.kind.value.user === "c1" && e.kind.value.action === 1 && e === presence().at(-1)),
      3000,
    );
    await Bun.sleep(200);
    // 1200 changes; the room's budget is 20 a second with bursts of 20.
    expect(presence().length).toBeLessThanOrEqual(20 + Math.ceil((seconds + 1.5) * 20));
    expect(presence().length).toBeLessThan(200);
    await core.close(watcher);
  });
});

test("a session opened with a token's expiry ends then with Unauthenticated; one without an expiry goes on", async () => {
  const expiring = await core.open("ann", "grpc", Date.now() + 100);
  const lasting = await core.open("ben", "grpc");
  const a = collect(expiring);
  const b = collect(lasting);
  await a.done;
  expect(a.box.error?.code).toBe(Code.Unauthenticated);
  expect(a.box.error?.rawMessage).toBe("token expired: get a new one");
  expect(lasting.closed).toBe(false);
  expect(b.box.error).toBeUndefined();
});

describe("refresh: a new token on an open Chat stream", () => {
  const withAuth = () =>
    new ChatCore({ engine, region: "test", limits: { ...limits }, log: createLogger("error"), auth: createAuthenticator({ jwtSecret: TEST_SECRET }) });
  const refresh = (token: string) => create(ChatRequestSchema, { kind: { case: "refresh", value: { token } } });

  test("the same user's new token: a refreshed event with its expiry, and the stream outlives the old one", async () => {
    const c = withAuth();
    const s = await c.open("ann", "grpc", Date.now() + 300);
    const got = collect(s);
    const token = await mintToken("ann", { expiresIn: 3600 });
    await c.handle(s, refresh(token));
    const refreshed = got.events.find((e) => e.kind.case === "refreshed");
    expect(refreshed?.kind.case === "refreshed" && timestampMs(refreshed.kind.value.expiresAt!)).toBeGreaterThan(Date.now() + 3_500_000);
    await Bun.sleep(1500);
    expect(s.closed).toBe(false);
    await c.drain();
  });

  test("another user's token, or a bad one: an error event, and the stream still ends at its old expiry", async () => {
    const c = withAuth();
    const s = await c.open("ann", "grpc", Date.now() + 300);
    const got = collect(s);
    await c.handle(s, refresh(await mintToken("ben", { expiresIn: 3600 })));
    await c.handle(s, refresh("not.a.token"));
    expect(got.events.flatMap((e) => (e.kind.case === "error" ? [`${e.kind.value.code}: ${e.kind.value.text}`] : []))).toEqual([
      'permission_denied: the token is for "ben" and this stream for "ann": a stream keeps its user',
      "unauthenticated: token is malformed",
    ]);
    await got.done;
    expect(got.box.error?.rawMessage).toBe("token expired: get a new one");
    await c.drain();
  });

  test("dev mode has no tokens: refresh is refused, the stream goes on", async () => {
    const s = await core.open("ann", "grpc");
    const got = collect(s);
    await core.handle(s, refresh("x"));
    expect(got.events.flatMap((e) => (e.kind.case === "error" ? [`${e.kind.value.code}: ${e.kind.value.text}`] : []))).toEqual([
      "failed_precondition: this server has no tokens (dev mode): its streams do not expire",
    ]);
    expect(s.closed).toBe(false);
  });
});
