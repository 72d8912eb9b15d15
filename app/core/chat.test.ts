// The chat core on the embedded engine, without sockets.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { Engine } from "../engine/engine.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import { createLogger } from "../log.ts";
import type { Limits } from "../config.ts";
import { ChatCore } from "./chat.ts";
import type { Session } from "./session.ts";

const limits: Limits = { maxTextBytes: 4096, maxRoomsPerSession: 4, ratePerSecond: 0, rateBurst: 40, maxRequestBytes: 65536, sessionQueue: 1000 };

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
  const done = (async () => {
    try {
      for await (const e of s.events()) events.push(e);
    } catch (err) {
      box.error = err as ConnectError;
    }
  })();
  const messages = (room: string) => events.flatMap((e) => (e.kind.case === "message" && e.kind.value.room === room ? [e.kind.value] : []));
  return { events, box, done, messages };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(2);
  }
}

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
    const rooms = await core.listRooms("ben");
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
});
