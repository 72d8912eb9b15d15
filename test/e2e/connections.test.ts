// Connections that never earn their keep, against the real server: a trickled request head,
// thousands of half-open requests from one address, an idle HTTP/2 connection, and a client that
// resets streams and reconnects. Each attacker connects from its own loopback address (127.0.0.x),
// so that the healthy client, from 127.0.0.1, is another address, as on the internet.
import { afterAll, beforeAll, expect, test } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema } from "../../app/gen/chat/v1/chat_pb.ts";
import { envelope } from "../../app/transport/event-frames.ts";
import { MAX_CONCURRENT_STREAMS } from "../../app/transport/listen.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";
import { scrape } from "../support/metrics.ts";

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer({
    EDGECHAT_HEADERS_TIMEOUT_SECONDS: "2",
    EDGECHAT_IDLE_TIMEOUT_SECONDS: "2",
    EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS: "50",
    EDGECHAT_MAX_STREAMS_PER_ADDRESS: "50",
  });
});
afterAll(async () => {
  await server?.stop();
});

function connectFrom(localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port: server.port, localAddress });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

const closed = (s: net.Socket) => (s.destroyed || s.readyState === "closed" ? Promise.resolve() : new Promise<void>((r) => s.once("close", () => r())));

async function healthy(): Promise<void> {
  const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2000) });
  expect(res.status).toBe(200);
  const send = await fetch(`${server.url}/chat.v1.ChatService/Send`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": "healthy" },
    body: JSON.stringify({ room: "ok", text: "still here" }),
    signal: AbortSignal.timeout(2000),
  });
  expect(send.status).toBe(200);
}

test("a request head trickled a byte at a time is cut off at the headers timeout", async () => {
  const s = await connectFrom("127.0.0.2");
  s.on("error", () => {});
  const head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(100);
  let i = 0;
  const timer = setInterval(() => !s.destroyed && s.write(head[i++ % head.length]), 200);
  const started = Date.now();
  await Promise.race([closed(s), Bun.sleep(8000)]);
  clearInterval(timer);
  expect(s.destroyed || s.readyState === "closed").toBe(true);
  expect(Date.now() - started).toBeLessThan(6000);
  await healthy();
}, 15_000);

test("thousands of half-open requests from one address: most refused at once, the rest timed out; others keep working", async () => {
  const attempts = await Promise.allSettled(
    Array.from({ length: 2000 }, async () => {
      const s = await connectFrom("127.0.0.3");
      s.on("error", () => {});
      s.write("POST /chat.v1.ChatService/Send HTTP/1.1\r\nHost: x\r\n");
      return s;
    }),
  );
  const sockets = attempts.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
  await healthy();
  await Bun.sleep(300);
  const open = sockets.filter((s) => !s.destroyed && s.readyState !== "closed");
  expect(open.length).toBeLessThanOrEqual(50);
  await healthy();
  // The ones let in had 2 s to finish their request head.
  await Promise.race([Promise.all(sockets.map(closed)), Bun.sleep(6000)]);
  expect(sockets.filter((s) => !s.destroyed && s.readyState !== "closed")).toEqual([]);
  const m = await scrape(server.metricsUrl);
  expect(m.get('edgechat_connections_refused_total{reason="max_per_address"}')).toBeGreaterThanOrEqual(1900);
  expect(m.get('edgechat_connections_refused_total{reason="headers_timeout"}')).toBeGreaterThanOrEqual(40);
  await healthy();
}, 30_000);

test("an HTTP/2 connection without streams is told to go away after the idle timeout", async () => {
  const session = http2.connect(server.url, { createConnection: () => net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.4" }) });
  session.on("error", () => {});
  const goaway = new Promise<boolean>((resolve) => {
    session.once("goaway", () => resolve(true));
    session.once("close", () => resolve(true));
  });
  expect(await Promise.race([goaway, Bun.sleep(8000).then(() => false)])).toBe(true);
  session.destroy();
}, 15_000);

test("HTTP/2 requests that take one message must arrive whole in time; a Chat stream may stay quiet", async () => {
  const session = http2.connect(server.url, { createConnection: () => net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.7" }) });
  session.on("error", () => {});
  const open = (path: string, type: string) => {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": type, te: "trailers", "x-user": "half" });
    req.on("error", () => {});
    const ended = new Promise<number>((resolve) => req.on("close", () => resolve(req.rstCode ?? -1)));
    return { req, ended };
  };
  const body = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: ["half"] }));
  // Half a message each, and never the rest: gRPC Subscribe (the direct path), gRPC-Web History
  // (Connect), and a Connect unary call whose body never comes at all.
  const grpc = open("/chat.v1.ChatService/Subscribe", "application/grpc");
  grpc.req.write(envelope(body).subarray(0, 7));
  const web = open("/chat.v1.ChatService/History", "application/grpc-web+proto");
  web.req.write(new Uint8Array([0, 0, 0, 0, 9, 0x0a]));
  const connect = open("/chat.v1.ChatService/ListRooms", "application/proto");
  // A Chat stream that sends nothing: a client that only listens is a client.
  const chat = open("/chat.v1.ChatService/Chat", "application/grpc");
  const started = Date.now();
  for (const call of [grpc, web, connect]) expect(await call.ended).toBe(http2.constants.NGHTTP2_CANCEL);
  // The server's headers timeout is 2 s; the guard looks once a second.
  expect(Date.now() - started).toBeLessThan(5000);
  await Bun.sleep(1500);
  expect(chat.req.closed).toBe(false);
  const m = await scrape(server.metricsUrl);
  expect(m.get('edgechat_connections_refused_total{reason="body_timeout"}')).toBe(3);
  chat.req.close();
  session.destroy();
  await healthy();
}, 20_000);

test("a client that resets streams is refused across reconnects, by address; others are not", async () => {
  const open = () => {
    const session = http2.connect(server.url, { createConnection: () => net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.5" }) });
    session.on("error", () => {});
    return session;
  };
  const session = open();
  const gone = new Promise<void>((resolve) => session.once("close", () => resolve()));
  for (let i = 0; i < 100 && !session.destroyed; i++) {
    const req = session.request({
      ":method": "POST",
      ":path": "/chat.v1.ChatService/Subscribe",
      "content-type": "application/grpc",
      te: "trailers",
      "x-user": "rst",
    });
    req.on("error", () => {});
    // HEADERS, then RST_STREAM as soon as the stream has its id: the rapid-reset pattern.
    req.once("ready", () => req.close(http2.constants.NGHTTP2_CANCEL));
    if (i % 10 === 9) await Bun.sleep(5);
  }
  expect(await Promise.race([gone.then(() => true), Bun.sleep(5000).then(() => false)])).toBe(true);
  // Reconnecting does not help: a fresh connection from the same address is refused at once.
  const again = await connectFrom("127.0.0.5").catch(() => undefined);
  if (again) {
    again.on("error", () => {});
    await Promise.race([closed(again), Bun.sleep(2000)]);
    expect(again.destroyed || again.readyState === "closed").toBe(true);
  }
  const m = await scrape(server.metricsUrl);
  expect(m.get('edgechat_connections_refused_total{reason="stream_rate"}')).toBe(1);
  expect(m.get('edgechat_connections_refused_total{reason="penalized"}')).toBeGreaterThanOrEqual(again ? 1 : 0);
  await healthy();
}, 20_000);

test("streams past the concurrent-stream limit are refused one by one; the streams within it are answered", async () => {
  const fresh = await startServer();
  try {
    // Raw frames: an HTTP/2 client library would wait for a free slot rather than overshoot.
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: fresh.port, localAddress: "127.0.0.6" });
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
    const frame = (type: number, flags: number, id: number, payload: Uint8Array) => {
      const b = Buffer.alloc(9 + payload.length);
      b.writeUIntBE(payload.length, 0, 3);
      b[3] = type;
      b[4] = flags;
      b.writeUInt32BE(id, 5);
      b.set(payload, 9);
      return b;
    };
    // HPACK literals without indexing (0x00, name, value); 0x83 0x86 are :method POST, :scheme http.
    const literal = (n: string, v: string) => Buffer.concat([Buffer.from([0x00, n.length]), Buffer.from(n), Buffer.from([v.length]), Buffer.from(v)]);
    const body = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: ["crowded"] }));
    const N = MAX_CONCURRENT_STREAMS + 100;
    const out = [Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(4, 0, 0, new Uint8Array())];
    for (let i = 0; i < N; i++) {
      const id = 1 + 2 * i;
      // A user per stream, so that no per-user rate ends a stream early and frees its slot.
      const head = [
        literal(":path", "/chat.v1.ChatService/Subscribe"),
        literal(":authority", "x"),
        literal("content-type", "application/grpc"),
        literal("te", "trailers"),
        literal("x-user", `crowd-${i}`),
      ];
      out.push(frame(1, 4, id, Buffer.concat([Buffer.from([0x83, 0x86]), ...head])), frame(0, 1, id, envelope(body)));
    }
    let pending = Buffer.alloc(0);
    const answered = new Set<number>();
    const refused = new Set<number>();
    let goaway = false;
    sock.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
        const len = pending.readUIntBE(0, 3);
        const id = pending.readUInt32BE(5) & 0x7fffffff;
        if (pending[3] === 1) answered.add(id);
        if (pending[3] === 3 && pending.readUInt32BE(9) === http2.constants.NGHTTP2_REFUSED_STREAM) refused.add(id);
        if (pending[3] === 7) goaway = true;
        pending = pending.subarray(9 + len);
      }
    });
    sock.write(Buffer.concat(out));
    await eventually(() => answered.size + refused.size >= N || goaway || sock.destroyed, 15_000, "an answer for every stream");
    expect({ answered: answered.size, refused: refused.size, goaway }).toEqual({ answered: MAX_CONCURRENT_STREAMS, refused: 100, goaway: false });
    sock.destroy();
  } finally {
    await fresh.stop();
  }
}, 30_000);
