// What must survive: a dropped connection, a retried send, a restart, a shutdown.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqs = (ms: { seq: bigint }[]) => ms.map((m) => Number(m.seq));

describe("on one server", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ EDGECHAT_RATE_PER_SECOND: "1000", EDGECHAT_RATE_BURST: "1000" });
  });
  afterAll(async () => {
    await server.stop();
  });

  test("resume after a disconnect: everything after since_seq, then live, no gap, no duplicate", async () => {
    const client = chatClient(transport(server.url, "grpc"));
    const room = "resume";
    const send = (i: number) => client.send({ target: { case: "room", value: room }, text: `m${i}` }, { headers: { "x-user": "ann" } });
    const first = openChat(client, "ben");
    await first.send({ kind: { case: "join", value: { room } } });
    await first.reader.until((r) => r.of("joined").length === 1);
    for (let i = 1; i <= 20; i++) await send(i);
    await first.reader.until((r) => r.messages(room).length === 20);
    first.abort();
    await first.reader.finished;
    const lastSeen = first.reader.messages(room).at(-1)!.seq;

    for (let i = 21; i <= 60; i++) await send(i);
    const second = openChat(client, "ben");
    await second.send({ kind: { case: "join", value: { room, sinceSeq: lastSeen } } });
    // Live traffic while the resume is catching up must not open a gap or repeat a message.
    for (let i = 61; i <= 80; i++) await send(i);
    await second.reader.until((r) => r.messages(room).length >= 60, 5000, "60 messages");
    expect(seqs(second.reader.messages(room))).toEqual(range(21, 80));
    second.close();
    await second.reader.finished;
  });

  test("a retried client_msg_id returns the original and is delivered once", async () => {
    const client = chatClient(transport(server.url, "connect", "1.1"));
    const room = "dedupe";
    const abort = new AbortController();
    const sub = new Reader(client.subscribe({ rooms: [room] }, { headers: { "x-user": "cat" }, signal: abort.signal }));
    await sub.until((r) => r.of("joined").length === 1);
    const req = { target: { case: "room" as const, value: room }, text: "only once", clientMsgId: "retry-1" };
    const a = await client.send(req, { headers: { "x-user": "ann" } });
    const b = await client.send(req, { headers: { "x-user": "ann" } });
    await client.send({ target: { case: "room", value: room }, text: "next" }, { headers: { "x-user": "ann" } });
    await sub.until((r) => r.messages(room).length === 2);
    expect(b.message?.id).toBe(a.message!.id);
    expect(b.message?.seq).toBe(1n);
    expect(sub.messages(room).map((m) => [m.text, Number(m.seq)])).toEqual([
      ["only once", 1],
      ["next", 2],
    ]);
    abort.abort();
    await sub.finished;
  });
});

test("history and seq survive a restart on the same data dir", async () => {
  const first = await startServer();
  const c1 = chatClient(transport(first.url, "connect"));
  for (let i = 1; i <= 3; i++) await c1.send({ target: { case: "toUser", value: "ben" }, text: `dm${i}` }, { headers: { "x-user": "ann" } });
  await c1.send({ target: { case: "room", value: "keep" }, text: "kept" }, { headers: { "x-user": "ann" } });
  expect(await first.stop("SIGTERM")).toBe(0);

  const second = await startServer({}, first.dataDir);
  try {
    const c2 = chatClient(transport(second.url, "grpc"));
    const dm = await c2.history({ room: "dm:ann:ben" }, { headers: { "x-user": "ben" } });
    expect(dm.messages.map((m) => [m.text, Number(m.seq), m.from])).toEqual([
      ["dm1", 1, "ann"],
      ["dm2", 2, "ann"],
      ["dm3", 3, "ann"],
    ]);
    const next = await c2.send({ target: { case: "room", value: "keep" }, text: "after restart" }, { headers: { "x-user": "ann" } });
    expect(next.message?.seq).toBe(2n);
    const rooms = await c2.listRooms({}, { headers: { "x-user": "ben" } });
    expect(rooms.rooms.map((r) => r.name)).toEqual(["dm:ann:ben", "keep"]);
  } finally {
    await second.stop();
  }
});

test("SIGTERM drains: open streams end with Unavailable, the process exits 0 within the drain time", async () => {
  const server = await startServer({ EDGECHAT_DRAIN_SECONDS: "3" });
  const grpc = openChat(chatClient(transport(server.url, "grpc")), "ann");
  const connect = openChat(chatClient(transport(server.url, "connect")), "ben");
  const h1 = new Reader(chatClient(transport(server.url, "connect", "1.1")).subscribe({ rooms: ["drain"] }, { headers: { "x-user": "cat" } }));
  await grpc.send({ kind: { case: "join", value: { room: "drain" } } });
  await connect.send({ kind: { case: "join", value: { room: "drain" } } });
  for (const r of [grpc.reader, connect.reader, h1]) await r.until((x) => x.of("joined").length === 1);

  const started = Date.now();
  const code = await server.stop("SIGTERM");
  const elapsed = Date.now() - started;
  for (const r of [grpc.reader, connect.reader, h1]) {
    await r.finished;
    expect(r.error?.code).toBe(Code.Unavailable);
    expect(r.error?.rawMessage).toContain("shutting down");
  }
  expect(code).toBe(0);
  expect(elapsed).toBeLessThan(3000 + 1500);
  expect(server.logs.map((l) => l.msg)).toContain("drained");
  const refused = await fetch(`${server.url}/healthz`).then(
    () => "answered",
    () => "refused",
  );
  expect(refused).toBe("refused");
});
