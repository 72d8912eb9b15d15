// Several regions, one chat: a 3-node NATS cluster and three edgechat processes (nrt, ams, iad),
// each attached to its own node first, with real connect-node clients. Then failures: a NATS node
// and an edgechat instance killed with SIGKILL under steady traffic, and a full NATS outage.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../app/gen/grpc/health/v1/health_pb.ts";
import { type Message, RoomChangeKind, RoomKind } from "../../app/gen/chat/v1/chat_pb.ts";
import { chatClient, openChat, transport } from "../support/clients.ts";
import { startCluster, startNats, type NatsCluster } from "../support/nats.ts";
import { freePort } from "../support/prometheus.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";
import { newApiKey } from "../../app/core/api-keys.ts";
import { newSecret } from "../../app/webhooks/signing.ts";
import { startReceiver, type Receiver } from "../support/receiver.ts";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServerService } from "../../app/gen/chat/v1/server_pb.ts";

const REGIONS = ["nrt", "ams", "iad"];
let cluster: NatsCluster;
let servers: ServerProcess[] = [];

const KEY = newApiKey("backend", ["moderate", "webhooks"]);
const HOOK_SECRET = newSecret();
let receiver: Receiver;
let hooksFile = "";
const env = (region: string, url: string) => ({
  EDGECHAT_WEBHOOKS_FILE: hooksFile,
  EDGECHAT_NATS_URL: url,
  EDGECHAT_REGION: region,
  EDGECHAT_RATE_PER_SECOND: "1000",
  EDGECHAT_RATE_BURST: "1000",
  EDGECHAT_API_KEYS: KEY.line,
});
const ready = (s: ServerProcess, ms = 30_000) => eventually(async () => (await fetch(`${s.url}/readyz`)).ok, ms, `${s.url} ready`);
// One client (one HTTP/2 connection) per server, as an application keeps: a connection per call
// would soon meet the server's cap on connections per address.
const clients = new Map<ServerProcess, ReturnType<typeof chatClient>>();
const client = (s: ServerProcess) => clients.get(s) ?? clients.set(s, chatClient(transport(s.url, "grpc"))).get(s)!;
const send = (s: ServerProcess, user: string, room: string, text: string, clientMsgId = "") =>
  client(s).send({ target: { case: "room", value: room }, text, clientMsgId }, { headers: { "x-user": user }, timeoutMs: 10_000 });
const seqs = (ms: Message[]) => ms.map((m) => Number(m.seq));
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Every message of a room, read newest page first, then older ones, through `s`. */
async function history(s: ServerProcess, room: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const page = await client(s).history({ room, beforeSeq: all[0]?.seq ?? 0n, limit: 500 }, { headers: { "x-user": "auditor" } });
    all.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return all;
  }
}

/** Opens a stream and joins `room` from `sinceSeq`, again after an error, as a client would. */
async function resume(s: ServerProcess, user: string, room: string, sinceSeq: bigint) {
  for (const until = Date.now() + 20_000; ; await Bun.sleep(250)) {
    const c = openChat(client(s), user);
    await c.send({ kind: { case: "join", value: { room, sinceSeq } } });
    const outcome = await c.reader.until((r) => (r.of("joined").length > 0 ? "joined" : r.of("error")[0]?.code), 10_000, "joined").catch((err) => String(err));
    if (outcome === "joined") return c;
    c.abort();
    await c.reader.finished;
    if (Date.now() > until) throw new Error(`${user} could not resume: ${outcome}`);
  }
}

beforeAll(async () => {
  receiver = await startReceiver(HOOK_SECRET);
  hooksFile = join(mkdtempSync(join(tmpdir(), "edgechat-hooks-")), "webhooks.json");
  writeFileSync(hooksFile, JSON.stringify({ endpoints: [{ id: "crm", url: receiver.url, secret: HOOK_SECRET, events: ["message.created"] }] }));
  cluster = await startCluster(3);
  // Each instance names its own node first; the others are where it goes when that one dies.
  const urlFor = (i: number) => [cluster.nodes[i], ...cluster.nodes.filter((_, j) => j !== i)].map((n) => n.url).join(",");
  servers = await Promise.all(REGIONS.map((r, i) => startServer(env(r, urlFor(i)))));
  await Promise.all(servers.map((s) => ready(s)));
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop("SIGKILL")));
  await cluster?.stop();
  await receiver?.stop();
});

test("three regions in one room and a DM: every message once, same order, same seq; ListOnline shows each region", async () => {
  const room = "world";
  const users = ["ann", "ben", "cat"];
  const chats = users.map((u, i) => openChat(client(servers[i]), u));
  for (const c of chats) await c.send({ kind: { case: "join", value: { room } } });
  for (const c of chats) await c.reader.until((r) => r.of("joined").length === 1, 10_000, "joined");
  for (let k = 0; k < 10; k++) {
    for (const [i, c] of chats.entries())
      await c.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: `${users[i]}${k}`, clientMsgId: `${users[i]}-${k}` } } });
  }
  for (const c of chats) await c.reader.until((r) => r.messages(room).length >= 30, 10_000, "30 messages");
  const seen = chats.map((c) => c.reader.messages(room).map((m) => `${m.seq}:${m.id}:${m.text}`));
  expect(seqs(chats[0].reader.messages(room))).toEqual(range(1, 30));
  expect(seen[1]).toEqual(seen[0]);
  expect(seen[2]).toEqual(seen[0]);
  expect(new Set(chats[0].reader.messages(room).map((m) => m.region))).toEqual(new Set(REGIONS));

  // A DM from Tokyo to Virginia: delivered once, to its two users only.
  await chats[0].send({ kind: { case: "send", value: { target: { case: "toUser", value: "cat" }, text: "psst", clientMsgId: "dm-1" } } });
  const dm = await chats[2].reader.until((r) => r.messages("dm:ann:cat")[0], 10_000, "the DM");
  expect(dm).toMatchObject({ text: "psst", from: "ann", seq: 1n, region: "nrt" });
  await chats[0].reader.until((r) => r.messages("dm:ann:cat").length === 1, 10_000, "the DM echoed");
  await Bun.sleep(200);
  expect(chats[2].reader.messages("dm:ann:cat")).toHaveLength(1);
  expect(chats[1].reader.messages("dm:ann:cat")).toHaveLength(0);

  for (const s of servers) {
    const online = await client(s).listOnline({ room }, { headers: { "x-user": "ann" } });
    expect(online.users.map((u) => [u.user, u.region, u.sessions])).toEqual([
      ["ann", "nrt", 1],
      ["ben", "ams", 1],
      ["cat", "iad", 1],
    ]);
  }
  for (const c of chats) c.close();
  await Promise.all(chats.map((c) => c.reader.finished));
}, 60_000);

test("concurrent senders in every region: seqs without gaps or duplicates", async () => {
  const room = "crowd";
  const senders = REGIONS.flatMap((r, i) => [0, 1, 2].map((k) => ({ server: servers[i], user: `${r}-${k}` })));
  const started = Date.now();
  const acks = await Promise.all(
    senders.map(async ({ server, user }) => {
      const mine: Message[] = [];
      for (let n = 0; n < 20; n++) mine.push((await send(server, user, room, `${user}:${n}`, `${user}:${n}`)).message!);
      return mine;
    }),
  );
  const elapsed = Date.now() - started;
  const acked = acks.flat();
  expect(acked.map((m) => Number(m.seq)).sort((a, b) => a - b)).toEqual(range(1, 180));
  // Each sender's own messages are in the order it sent them.
  for (const mine of acks) expect(seqs(mine)).toEqual([...seqs(mine)].sort((a, b) => a - b));
  const stored = await history(servers[2], room);
  expect(seqs(stored)).toEqual(range(1, 180));
  expect(new Set(stored.map((m) => m.id))).toEqual(new Set(acked.map((m) => m.id)));
  console.log(`180 sends from 9 senders in 3 regions: ${elapsed} ms`);
}, 60_000);

test("rooms with owners across regions: a private room made in one is private in all; a ban and a mute hold everywhere within a second", async () => {
  const [nrt, ams, iad] = servers;
  const as = (user: string) => ({ headers: { "x-user": user }, timeoutMs: 10_000 });
  await client(nrt).createRoom({ name: "crew", kind: RoomKind.PRIVATE }, as("olga"));
  await client(nrt).addMember({ room: "crew", user: "ben" }, as("olga"));
  await client(nrt).addMember({ room: "crew", user: "cat" }, as("olga"));
  const refused = (p: Promise<unknown>) =>
    p.then(
      () => "sent",
      (e) => ConnectError.from(e).code,
    );
  await eventually(async () => (await refused(send(iad, "eve", "crew", "let me in"))) === Code.PermissionDenied, 1000, "private in iad");
  const ben = openChat(client(ams), "ben");
  await ben.send({ kind: { case: "join", value: { room: "crew" } } });
  await ben.reader.until((r) => r.of("joined").length > 0, 5000, "ben joined in ams");

  await client(iad).ban({ room: "crew", user: "ben", reason: "leaked plans" }, as("olga"));
  const banned = Date.now();
  await eventually(async () => (await refused(send(nrt, "ben", "crew", "still here"))) === Code.PermissionDenied, 1000, "ben refused in nrt");
  await ben.reader.until((r) => r.of("error").length > 0, 1000, "ben's stream in ams told");
  expect(ben.reader.of("error")[0].text).toBe('you are banned from room "crew" for good: leaked plans');
  expect(Date.now() - banned).toBeLessThan(1000);

  await client(ams).mute({ room: "crew", user: "cat" }, as("olga"));
  await eventually(async () => (await refused(send(iad, "cat", "crew", "hi"))) === Code.PermissionDenied, 1000, "cat muted in iad");
  // Read, still: history through the third region has every change in order.
  const page = await client(nrt).history({ room: "crew", afterSeq: 0n }, as("olga"));
  const K = RoomChangeKind;
  expect(page.messages.map((m) => m.change?.kind)).toEqual([K.CREATED, K.MEMBER_ADDED, K.MEMBER_ADDED, K.BANNED, K.MUTED]);
  ben.close();

  // A room deleted in one region: a stream in another leaves it, its history is gone everywhere,
  // and its name starts again at seq 1 in a third.
  await client(nrt).createRoom({ name: "brief", kind: RoomKind.PUBLIC }, as("olga"));
  await send(nrt, "olga", "brief", "soon gone");
  const olga = openChat(client(ams), "olga");
  await olga.send({ kind: { case: "join", value: { room: "brief" } } });
  await olga.reader.until((r) => r.of("joined").length > 0, 5000, "olga joined in ams");
  await client(iad).deleteRoom({ room: "brief" }, as("olga"));
  await olga.reader.until((r) => r.of("error").length > 0, 2000, "olga's stream in ams told");
  expect(olga.reader.of("error").map((e) => [e.code, e.text])).toEqual([["not_found", 'room "brief" was deleted']]);
  expect((await client(ams).history({ room: "brief", afterSeq: 0n }, as("olga"))).messages).toEqual([]);
  expect((await send(nrt, "ann", "brief", "a new room of the same name")).message?.seq).toBe(1n);
  olga.close();
});

test("read state set in one region: the user's stream in another is told at once, and ListRooms there counts from it", async () => {
  const [nrt, ams] = servers;
  for (const text of ["a", "b", "c"]) await send(nrt, "writer", "reads", text);
  const chat = openChat(client(ams), "reader");
  await chat.reader.until((r) => r.of("ready").length > 0, 5000, "reader ready in ams");
  await client(nrt).markRead({ room: "reads", seq: 2n }, { headers: { "x-user": "reader" } });
  await chat.reader.until((r) => r.of("read").length > 0, 2000, "told in ams");
  expect(chat.reader.of("read").map((r) => [r.room, r.lastReadSeq])).toEqual([["reads", 2n]]);
  const listed = (await client(ams).listRooms({}, { headers: { "x-user": "reader" } })).rooms.find((r) => r.name === "reads");
  expect(listed).toMatchObject({ lastReadSeq: 2n, unread: 1 });
  chat.close();
});

test("an edit in one region reaches a stream in another with the message attached; the server API's Disconnect in one ends streams in all", async () => {
  const [nrt, ams, iad] = servers;
  const m = (await send(nrt, "editor", "edits", "teh plan")).message!;
  const watcher = openChat(client(ams), "watcher");
  await watcher.send({ kind: { case: "join", value: { room: "edits", sinceSeq: m.seq } } });
  await watcher.reader.until((r) => r.of("joined").length > 0, 5000, "joined in ams");
  await client(nrt).editMessage({ room: "edits", seq: m.seq, text: "the plan" }, { headers: { "x-user": "editor" } });
  const entry = await watcher.reader.until((r) => r.messages("edits").find((x) => x.update), 5000, "the edit in ams");
  expect(entry.update?.message).toMatchObject({ seq: m.seq, text: "the plan", version: 1n });

  const [inAms, inIad] = [openChat(client(ams), "mallory"), openChat(client(iad), "mallory")];
  for (const c of [inAms, inIad]) await c.reader.until((r) => r.of("ready").length > 0, 5000, "mallory ready");
  const serverApi = createClient(ServerService, transport(nrt.url, "connect"));
  await serverApi.disconnect({ user: "mallory", reason: "fraud" }, { headers: { authorization: `Bearer ${KEY.key}` } });
  for (const c of [inAms, inIad]) {
    await c.reader.finished;
    expect([c.reader.error?.code, c.reader.error?.rawMessage]).toEqual([Code.PermissionDenied, "the server disconnected you: fraud"]);
  }
  expect(watcher.reader.done).toBe(false);
  watcher.close();
});

test("webhooks from three regions: each message's event delivered once, signed, whichever region stored it", async () => {
  await Promise.all(servers.flatMap((s, i) => Array.from({ length: 5 }, (_, k) => send(s, `w${i}`, "hooked", `r${i}-${k}`))));
  const hooked = () => receiver.received.filter((r) => (r.body.data as { room: string }).room === "hooked");
  await eventually(() => hooked().length >= 15, 15_000, "15 events");
  await Bun.sleep(1000);
  const texts = hooked().map((r) => (r.body.data as { message: { text: string } }).message.text);
  expect(texts.sort()).toEqual(REGIONS.flatMap((_, i) => Array.from({ length: 5 }, (_, k) => `r${i}-${k}`)).sort());
  expect(new Set(hooked().map((r) => r.id)).size).toBe(15);
  expect(hooked().every((r) => r.verified)).toBe(true);

  // An endpoint made through the server API in one region: the others deliver to it too, once each.
  const api = createClient(ServerService, transport(servers[0].url, "connect"));
  const second = await startReceiver(HOOK_SECRET);
  try {
    const made = await api.createWebhookEndpoint(
      { id: "audit", url: second.url, events: ["message.created"] },
      { headers: { authorization: `Bearer ${KEY.key}` } },
    );
    second.useSecret(made.secret);
    await Bun.sleep(1500); // every region has followed the new endpoint
    await Promise.all(servers.map((s, i) => send(s, `w${i}`, "audited", `a${i}`)));
    await eventually(() => second.received.length >= 3, 15_000, "3 events for the new endpoint");
    await Bun.sleep(500);
    expect(second.received.map((r) => (r.body.data as { message: { text: string } }).message.text).sort()).toEqual(["a0", "a1", "a2"]);
    expect(second.received.every((r) => r.verified)).toBe(true);
  } finally {
    await second.stop();
  }
}, 30_000);

test("kill -9 a NATS node, then an edgechat instance, under traffic: nothing acknowledged is lost, no gaps, no duplicates", async () => {
  const room = "storm";
  const [nrt, ams, iad] = servers;
  const watchers = [openChat(client(nrt), "ann"), openChat(client(ams), "ben"), openChat(client(iad), "cat")];
  for (const w of watchers) await w.send({ kind: { case: "join", value: { room } } });
  for (const w of watchers) await w.reader.until((r) => r.of("joined").length === 1, 10_000, "joined");

  // One sender per region, each to its own instance, a message every 10 ms; an error is not an ack.
  const acked = new Map<string, Message>();
  const failed: { region: string; code: Code; at: number }[] = [];
  let stop = false;
  const stopped = new Set<string>();
  const loops = REGIONS.map(async (region, i) => {
    for (let n = 0; !stop && !stopped.has(region); n++) {
      const id = `${region}-${n}`;
      await send(servers[i], `sender-${region}`, room, id, id).then(
        (res) => acked.set(id, res.message!),
        (err) => failed.push({ region, code: ConnectError.from(err).code, at: Date.now() }),
      );
      await Bun.sleep(10);
    }
  });
  const ackedSince = (region: string, t: number) =>
    [...acked.values()].filter((m) => m.region === region && Number(m.sentAt!.seconds) * 1000 + m.sentAt!.nanos / 1e6 > t);

  await Bun.sleep(1000);
  const nodeKilledAt = Date.now();
  await cluster.kill(cluster.nodes[0]); // nrt's own node
  // How long JetStream takes to elect new leaders for what the dead node led varies a lot: 0.1 to
  // 8 s in this test's runs, up to 18 s with the webhook streams and consumers on the cluster too
  // (more groups to elect). The wait bounds it; the guarantees checked below do not depend on it.
  await eventually(() => ackedSince("nrt", nodeKilledAt).length >= 5, 40_000, "nrt acknowledged again via another node");
  const recoveredMs = Date.now() - nodeKilledAt;

  stopped.add("ams");
  await ams.stop("SIGKILL");
  await watchers[1].reader.finished;
  const benLast = watchers[1].reader.messages(room).at(-1)?.seq ?? 0n;
  const resumed = await resume(iad, "ben", room, benLast);
  await Bun.sleep(1000);
  stop = true;
  await Promise.all(loops);

  const stored = await history(iad, room);
  const last = stored.length;
  expect(seqs(stored)).toEqual(range(1, last));
  expect(new Set(stored.map((m) => m.id)).size).toBe(last);
  expect(new Set(stored.map((m) => m.clientMsgId)).size).toBe(last);
  const storedIds = new Set(stored.map((m) => m.id));
  for (const m of acked.values()) expect(storedIds.has(m.id)).toBe(true);

  // Survivors got everything once, in order; ben got the rest on iad from where he was.
  const ids = (ms: Message[]) => ms.map((m) => `${m.seq}:${m.id}`);
  for (const w of [watchers[0], watchers[2]]) {
    await w.reader.until((r) => r.messages(room).length >= last, 20_000, "every stored message");
    expect(ids(w.reader.messages(room))).toEqual(ids(stored));
  }
  // A join refused after "joined" (the room directory changing leader) is joined again, from the
  // last message received, as a client does.
  let refused = 0;
  await eventually(
    () => {
      const errors = resumed.reader.of("error").filter((e) => e.room === room).length;
      if (errors > refused) {
        refused = errors;
        void resumed.send({ kind: { case: "join", value: { room, sinceSeq: resumed.reader.messages(room).at(-1)?.seq ?? benLast } } });
      }
      return (resumed.reader.messages(room).at(-1)?.seq ?? 0n) >= BigInt(last);
    },
    20_000,
    "ben caught up",
  );
  expect(ids([...watchers[1].reader.messages(room), ...resumed.reader.messages(room)])).toEqual(ids(stored));
  const unavailable = failed.filter((f) => f.code === Code.Unavailable && f.region !== "ams").length;
  console.log(
    `storm: ${acked.size} acked, ${last} stored, ${failed.length} failed (${unavailable} unavailable outside ams); nrt acked again ${recoveredMs} ms after its node died`,
  );

  for (const c of [watchers[0], watchers[2], resumed]) c.close();
  await cluster.start(cluster.nodes[0]);
  await cluster.waitForLeader();
}, 90_000);

test("a full NATS outage: sends fail fast with UNAVAILABLE and readiness drops; service returns with NATS", async () => {
  const s = servers[0];
  const before = (await send(s, "ann", "outage", "before")).message!.seq;
  for (const n of cluster.nodes) await cluster.kill(n);
  await eventually(async () => (await fetch(`${s.url}/readyz`)).status === 503, 10_000, "not ready");
  const health = createClient(Health, transport(s.url, "grpc"));
  expect((await health.check({ service: "" })).status).toBe(Serving.NOT_SERVING);
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const err = await send(s, "ann", "outage", `during ${i}`).then(
      () => undefined,
      (e) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.Unavailable);
    expect(Date.now() - started).toBeLessThan(500);
  }
  await Promise.all(cluster.nodes.map((n) => cluster.start(n)));
  await cluster.waitForLeader();
  await ready(s);
  const after = await eventually(
    () =>
      send(s, "ann", "outage", "after").then(
        (r) => r.message!,
        () => undefined,
      ),
    30_000,
    "a send after the outage",
  );
  expect(after!.seq).toBe(before + 1n);
  // The room records came through the outage too: the private room is still private.
  const eve = await send(s, "eve", "crew", "in at last?").then(
    () => "sent",
    (e) => Code[ConnectError.from(e).code],
  );
  expect(eve).toBe("PermissionDenied");
}, 90_000);

test("the cluster runs deploy/nats/nats.conf: a client without its password is refused", async () => {
  const { connect } = await import("@nats-io/transport-node");
  const node = cluster.nodes[1];
  const err = await connect({ servers: `127.0.0.1:${node.port}`, reconnect: false, timeout: 5000 }).then(
    async (nc) => (await nc.close(), undefined),
    (e: Error) => e,
  );
  expect(String(err)).toMatch(/Authorization Violation/i);
  expect(node.url).toMatch(/^nats:\/\/edgechat:[^@]+@127\.0\.0\.1:/);
});

test("NATS unreachable at start: the server starts, is not ready and says why, then becomes ready", async () => {
  const port = await freePort();
  const s = await startServer(env("nrt", `nats://127.0.0.1:${port}`));
  try {
    expect((await fetch(`${s.url}/readyz`)).status).toBe(503);
    const health = createClient(Health, transport(s.url, "connect"));
    expect((await health.check({ service: "chat.v1.ChatService" })).status).toBe(Serving.NOT_SERVING);
    await eventually(() => s.logs.some((l) => l.msg === "nats unreachable; not ready, retrying"), 5_000, "the reason logged");
    const err = await send(s, "ann", "early", "too early").then(
      () => undefined,
      (e) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.Unavailable);
    const nats = await startNats(port);
    try {
      await ready(s);
      expect((await send(s, "ann", "early", "now")).message?.seq).toBe(1n);
    } finally {
      await nats.stop();
    }
  } finally {
    await s.stop("SIGKILL");
  }
}, 60_000);
