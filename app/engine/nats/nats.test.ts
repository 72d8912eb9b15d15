// The NATS engine against a real nats-server (JetStream, one node, loopback): the shared contract,
// then what only a shared engine has to do: several instances on one stream, live fan-out by
// republish, expiry of a crashed instance's presence, and failing fast without a server.
import { eventually } from "../../../test/support/wait.ts";
import { afterAll, afterEach, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { loadConfig } from "../../config.ts";
import { createLogger } from "../../log.ts";
import { type ChatEvent, type Message, MessageSchema, UpdateKind } from "../../gen/chat/v1/chat_pb.ts";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { roomSubject, STREAM, updateMsgId } from "./names.ts";
import { react } from "../../core/message-updates.ts";
import { deleteDraft, editDraft } from "../../../test/support/updates.ts";
import { filesContaining } from "../../../test/support/files.ts";
import { engineContract } from "../contract.ts";
import { freePort } from "../../../test/support/prometheus.ts";
import { startNats, wipeJetStream } from "../../../test/support/nats.ts";
import { connectOptions } from "./conn.ts";
import { createNatsEngine, type NatsEngine, type NatsTuning } from "./index.ts";

const nats = await startNats();
const log = createLogger("error");
const engines: NatsEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});
afterAll(async () => {
  await nats.stop();
});

/** Deletes every stream (history and buckets), so that each test starts from nothing. */
const wipe = () => wipeJetStream(nats.nodes[0].url);

async function engine(region = "test", env: Record<string, string> = {}, tuning: Partial<NatsTuning> = {}): Promise<NatsEngine> {
  const e = createNatsEngine(loadConfig({ EDGECHAT_NATS_URL: nats.urls, EDGECHAT_REGION: region, ...env }), log, tuning);
  engines.push(e);
  await e.ready();
  return e;
}

engineContract("nats", async () => {
  await wipe();
  return engine();
});

const draft = (room: string, text: string, from = "ann", clientMsgId = "") => ({ room, from, text, clientMsgId, region: "x" });

test("two instances share one room: gapless seqs, dedupe across them, live delivery to both", async () => {
  await wipe();
  const [a, b] = [await engine("nrt"), await engine("ams")];
  const seen: Record<string, bigint[]> = { a: [], b: [] };
  const onMessage = (list: bigint[]) => (e: ChatEvent) => e.kind.case === "message" && list.push(e.kind.value.seq);
  await a.bus.subscribe("shared", onMessage(seen.a));
  await b.bus.subscribe("shared", onMessage(seen.b));
  const sends = Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).history.append(draft("shared", `m${i}`, `u${i % 5}`)));
  const seqs = (await Promise.all(sends)).map((r) => Number(r.message.seq)).sort((x, y) => x - y);
  expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  const once = await a.history.append(draft("shared", "once", "ann", "k1"));
  const again = await b.history.append(draft("shared", "again", "ann", "k1"));
  expect(again).toMatchObject({ duplicate: true });
  expect(again.message.id).toBe(once.message.id);
  // Publishing a stored message on the bus is a no-op: republish already delivered it, once.
  await a.bus.publish("shared", { kind: { case: "message", value: once.message } } as ChatEvent);
  const all = Array.from({ length: 61 }, (_, i) => BigInt(i + 1));
  await waitFor(() => seen.a.length >= 61 && seen.b.length >= 61);
  await Bun.sleep(100);
  expect(seen.a).toEqual(all);
  expect(seen.b).toEqual(all);
});

test("reads from an instance that knows nothing find pages in a stream of interleaved rooms", async () => {
  await wipe();
  const w = await engine();
  for (let i = 1; i <= 300; i++) await w.history.append(draft(["x", "y", "z"][i % 3 === 0 ? 0 : i % 7 === 0 ? 1 : 2], `m${i}`));
  const fresh = await engine();
  for (const room of ["x", "y", "z"]) {
    const last = Number(await fresh.history.lastSeq(room));
    const all = (await w.history.read(room, { afterSeq: 0n, limit: 500 })).messages.map((m) => Number(m.seq));
    expect(all).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    for (const after of [0, 1, Math.floor(last / 2), last - 3]) {
      const page = await fresh.history.read(room, { afterSeq: BigInt(after), limit: 5 });
      expect(page.messages.map((m) => Number(m.seq))).toEqual(Array.from({ length: Math.min(5, last - after) }, (_, i) => after + i + 1));
    }
    const older = await fresh.history.read(room, { beforeSeq: BigInt(last - 10), limit: 20 });
    const from = Math.max(1, last - 30);
    expect(older.messages.map((m) => Number(m.seq))).toEqual(Array.from({ length: last - 10 - from }, (_, i) => from + i));
    expect(older.hasMore).toBe(from > 1);
  }
});

test("a crashed instance's presence expires; another instance sees it go", async () => {
  await wipe();
  const tuning = { presenceTtlMs: 1500 };
  const [a, b] = [await engine("nrt", {}, tuning), await engine("ams", {}, tuning)];
  expect(await a.presence.enter("room", "ann", "s1", "nrt")).toBe(true);
  expect(await b.presence.enter("room", "ann", "s2", "ams")).toBe(false);
  expect(await b.presence.enter("room", "ben", "s3", "ams")).toBe(true);
  expect((await b.presence.online("room")).find((e) => e.user === "ann")?.sessions).toBe(2);
  // Outlives several TTLs while its instance refreshes it.
  await Bun.sleep(3500);
  expect((await b.presence.online("room")).map((e) => e.user).sort()).toEqual(["ann", "ben"]);
  await a.close(); // like a crash: no leave, the refresh just stops
  // Gone after the TTL; the server expires keys on its own schedule, so wait for it rather than
  // a fixed time (a loaded machine took longer than 2.5 s once).
  const expected = [
    { user: "ann", region: "ams", sessions: 1 },
    { user: "ben", region: "ams", sessions: 1 },
  ];
  const until = Date.now() + 10_000;
  let online = await b.presence.online("room");
  while (JSON.stringify(online) !== JSON.stringify(expected) && Date.now() < until) {
    await Bun.sleep(100);
    online = await b.presence.online("room");
  }
  expect(online).toEqual(expected);
  expect(await b.presence.leave("room", "ann", "s2")).toBe(true);
}, 25_000);

test("a room whose messages all expired continues its seq", async () => {
  await wipe();
  const e = await engine("test", { EDGECHAT_NATS_MAX_AGE: "1s" });
  for (let i = 1; i <= 3; i++) await e.history.append(draft("brief", `m${i}`));
  await Bun.sleep(3500); // the floor is written within 2 s, the messages are gone after 1 s
  const fresh = await engine("test", { EDGECHAT_NATS_MAX_AGE: "1s" });
  expect((await fresh.history.read("brief", { limit: 10 })).messages).toEqual([]);
  expect(await fresh.history.lastSeq("brief")).toBe(3n);
  expect((await fresh.history.append(draft("brief", "back"))).message.seq).toBe(4n);
  // Reading forwards from an expired seq continues at the oldest message still there.
  expect((await fresh.history.read("brief", { afterSeq: 1n, limit: 2 })).messages.map((m) => m.text)).toEqual(["back"]);
  expect(await fresh.history.read("brief", { beforeSeq: 4n, limit: 2 })).toEqual({ messages: [], hasMore: false });
}, 15_000);

test("without a reachable server: not ready, and every operation fails fast with Unavailable", async () => {
  const port = await freePort();
  const e = createNatsEngine(loadConfig({ EDGECHAT_NATS_URL: `nats://127.0.0.1:${port}` }), log);
  engines.push(e);
  const states: boolean[] = [];
  e.watchReady!((up) => states.push(up));
  const started = Date.now();
  const err = await e.history.append(draft("r", "lost?")).catch((x) => x);
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.Unavailable);
  await expect(e.bus.subscribe("r", () => {})).rejects.toMatchObject({ code: Code.Unavailable });
  expect(Date.now() - started).toBeLessThan(100);
  expect(states).toEqual([false]);
  await e.close();
});

test("EDGECHAT_NATS_URL: servers in order, credentials taken out of the URLs, {region} filled in", () => {
  const limits = { maxAgeSeconds: 60, maxMsgs: 0 };
  const o = connectOptions({ servers: "nats://ann:s%3Acret@{region}.nats.internal:4222, nats.internal", ...limits }, "nrt");
  expect(o.servers).toEqual(["nrt.nats.internal:4222", "nats.internal:4222"]);
  expect([o.user, o.pass, o.token, o.tls]).toEqual(["ann", "s:cret", undefined, undefined]);
  expect(o).toMatchObject({ maxReconnectAttempts: -1, noRandomize: true });
  const t = connectOptions({ servers: "tls://t0ken@h:4443", tlsCa: "/ca.pem", ...limits }, "x");
  expect(t).toMatchObject({ servers: ["h:4443"], token: "t0ken", tls: { caFile: "/ca.pem" } });
});

const waitFor = (check: () => boolean, ms = 5000) => eventually(check, ms, "condition", 10);

test("a room record written by one instance is in another's memory within a second; concurrent updates from both all land", async () => {
  await wipe();
  const [a, b] = [await engine("nrt"), await engine("ams")];
  const record = (name: string) => ({
    name,
    kind: "private" as const,
    title: "",
    topic: "",
    createdBy: "olga",
    createdAtMs: Date.now(),
    roles: new Map([["olga", "owner" as const]]),
    bans: new Map(),
    mutes: new Map(),
  });
  expect(await a.access.createRoom(record("team"))).toBe(true);
  const t0 = Date.now();
  await eventually(() => b.access.room("team")?.createdBy === "olga", 1000, "the record in the other instance", 5);
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(await b.access.createRoom(record("team"))).toBe(false);
  // Both instances change the same record at once: optimistic locking keeps every change.
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      (i % 2 ? a : b).access.updateRoom("team", (r) => (r.bans.set(`spammer${i}`, { untilMs: 0, reason: "", by: "olga" }), r)),
    ),
  );
  await eventually(() => a.access.room("team")?.bans.size === 10 && b.access.room("team")?.bans.size === 10, 2000, "every ban in both", 5);
  await b.access.setBlocked("ann", "bob", true);
  await eventually(() => a.access.blocked("ann").has("bob"), 1000, "the block in the other instance", 5);
  // A third instance that starts now loads everything before it is ready.
  const c = await engine("syd");
  expect([c.access.room("team")?.bans.size, c.access.blocked("ann").has("bob")]).toEqual([10, true]);
});

test("a change made through one instance goes live on another with the message attached; changes from both all land", async () => {
  await wipe();
  const [a, b] = [await engine("nrt"), await engine("ams")];
  const seen: Message[] = [];
  await b.bus.subscribe("shared", (e) => e.kind.case === "message" && seen.push(e.kind.value));
  await a.history.append(draft("shared", "v0"));
  const thumbsUp = (e: NatsEngine, user: string) =>
    e.history.update({
      room: "shared",
      targetSeq: 1n,
      from: user,
      clientMsgId: "",
      region: "x",
      kind: UpdateKind.REACTION_ADDED,
      emoji: "👍",
      change: react({ user }, "shared", 1n, "👍", true),
    });
  // One at a time per instance; the two instances race each other, and compare-and-set sorts it out.
  await Promise.all([0, 1, 2].map((i) => thumbsUp(i % 2 ? a : b, `u${i}`)));
  await waitFor(() => seen.length === 4);
  const entries = seen.filter((m) => m.update);
  expect(entries.map((m) => Number(m.update!.version)).sort()).toEqual([1, 2, 3]);
  for (const m of entries) expect(m.update!.message!.version).toBeGreaterThanOrEqual(m.update!.version);
  const [now] = (await a.history.read("shared", { afterSeq: 0n, limit: 1 })).messages;
  expect([now.version, now.reactions[0].count, [...now.reactions[0].users].sort()]).toEqual([3n, 3, ["u0", "u1", "u2"]]);
});

test("a retried change whose entry a crash left out only appends the entry", async () => {
  await wipe();
  const e = await engine();
  await e.history.append(draft("r", "teh"));
  const edit = (text: string) => editDraft("r", 1n, text, "k1");
  // The crash: the new version stored with its key, and no entry after it.
  const nc = await connect({ servers: nats.nodes[0].url });
  const js = jetstream(nc);
  const old = await (await jetstreamManager(nc)).streams.getMessage(STREAM, { last_by_subj: roomSubject("r", 1) });
  const h = headers();
  h.set("Edgechat-Applied", updateMsgId(edit("the")));
  const next = { ...fromBinary(MessageSchema, old!.data), text: "the", version: 1n } as Message;
  await js.publish(roomSubject("r", 1), toBinary(MessageSchema, next), { headers: h });
  await nc.close();
  const retry = await e.history.update(edit("the"));
  expect(retry.message).toMatchObject({ text: "the", version: 1n });
  expect(retry.entry?.update).toMatchObject({ kind: UpdateKind.EDITED, targetSeq: 1n, version: 1n });
  const again = await e.history.update(edit("the"));
  expect([again.duplicate, again.entry?.seq]).toEqual([true, retry.entry!.seq]);
  const page = await e.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text, m.version, m.update?.kind ?? 0])).toEqual([
    [1n, "the", 1n, 0],
    [2n, "", 0n, UpdateKind.EDITED],
  ]);
});

test("a deleted message's text, and the text an edit replaced, are erased from the stream's files", async () => {
  await wipe();
  const e = await engine();
  const secret = `the launch code is ${crypto.randomUUID()}`;
  const first = `before the edit ${crypto.randomUUID()}`;
  await e.history.append({ room: "r", from: "ann", text: secret, clientMsgId: "", region: "x" });
  await e.history.append({ room: "r", from: "ann", text: first, clientMsgId: "", region: "x" });
  await e.history.append({ room: "r", from: "ann", text: "kept", clientMsgId: "", region: "x" });
  const dir = nats.nodes[0].storeDir;
  await eventually(() => filesContaining(dir, secret).length > 0, 5000, "the text on disk", 20);
  await e.history.update(deleteDraft("r", 1n));
  await e.history.update(editDraft("r", 2n, "after the edit"));
  // JetStream overwrites an erased message in its block at once; the file store writes it out within a moment.
  await eventually(() => filesContaining(dir, secret).length === 0 && filesContaining(dir, first).length === 0, 5000, "the old texts erased", 50);
  expect(filesContaining(dir, "after the edit").length).toBeGreaterThan(0);
  const page = await e.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text, m.deleted, m.version])).toEqual([
    [1n, "", true, 1n],
    [2n, "after the edit", false, 1n],
    [3n, "kept", false, 0n],
    [4n, "", false, 0n],
    [5n, "", false, 0n],
  ]);
});

test("webhook outbox: deliveries ride with their entries, and two instances deliver each once; failures back off, then a dead letter", async () => {
  await wipe();
  const [a, b] = [await engine("nrt"), await engine("ams")];
  await Promise.all([a.outbox!.start!(["crm"], 5000), b.outbox!.start!(["crm"], 5000)]);
  const rows = (m: Message) => [{ eventId: `evt-${m.room}-${m.seq}`, endpoint: "crm", type: "message.created", body: JSON.stringify({ text: m.text }) }];
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).history.append({ ...draft("hooked", `m${i}`), webhooks: rows })));
  await a.outbox!.add([{ eventId: "evt-offline", endpoint: "crm", type: "user.offline", body: "{}" }]);
  const delivered: string[] = [];
  await eventually(
    async () => {
      for (const e of [a, b])
        for (const d of await e.outbox!.due(Date.now(), 50)) {
          delivered.push(d.eventId);
          await e.outbox!.delivered(d);
        }
      return delivered.length >= 21;
    },
    10_000,
    "21 deliveries",
    20,
  );
  await Bun.sleep(300);
  for (const e of [a, b]) expect(await e.outbox!.due(Date.now(), 50)).toEqual([]);
  expect(delivered.sort()).toEqual([...Array.from({ length: 20 }, (_, i) => `evt-hooked-${i + 1}`), "evt-offline"].sort());

  // A failure: nak'ed with a delay, back with one more try, then given up: a dead letter, redelivered.
  await a.outbox!.add([{ eventId: "evt-fail", endpoint: "crm", type: "user.offline", body: "{}" }]);
  /** The next delivery, from whichever instance holds it. */
  const next = () =>
    eventually(
      async () => {
        for (const e of [a, b]) {
          const [d] = await e.outbox!.due(Date.now(), 1);
          if (d) return { outbox: e.outbox!, d };
        }
        return undefined;
      },
      5000,
      "the delivery",
      20,
    );
  const first = (await next())!;
  // Held, not yet made: the lag counts from when it was filed.
  expect((await a.outbox!.stats()).get("crm")?.oldestMs).toBeGreaterThan(Date.now() - 10_000);
  await first.outbox.failed(first.d, Date.now() + 200, "HTTP 500");
  const second = (await next())!;
  expect([second.d.eventId, second.d.attempts]).toEqual(["evt-fail", 1]);
  await second.outbox.failed(second.d, undefined, "HTTP 500");
  const dead = await eventually(async () => (await a.outbox!.deadLetters("crm", 10))[0], 5000, "a dead letter", 20);
  expect(dead).toMatchObject({ eventId: "evt-fail", attempts: 2, lastError: "HTTP 500" });
  expect((await b.outbox!.stats()).get("crm")).toMatchObject({ dead: 1 });
  expect(await b.outbox!.redeliver("crm")).toBe(1);
  expect((await next())!.d.eventId).toBe("evt-fail");
  expect(await a.outbox!.deadLetters("crm", 10)).toEqual([]);
});
