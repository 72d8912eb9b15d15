// gRPC Send and Subscribe on the wire, made by hand with node:http2 so that the test sees every
// byte, header and trailer: served directly on the HTTP/2 stream (app/transport/direct.ts), with
// plain and gzip-compressed requests alike (the same events in the same order, the same statuses
// and messages, the same metrics), each rule of the gRPC spec on its own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { gunzipSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  ChatEventSchema,
  ChatRequestSchema,
  SendRequestSchema,
  SendResponseSchema,
  SubscribeRequestSchema,
  type ChatEvent,
} from "../../app/gen/chat/v1/chat_pb.ts";
import { envelope } from "../../app/transport/event-frames.ts";
import { chatClient, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { scrape } from "../support/metrics.ts";
import { eventually } from "../support/wait.ts";

const SERVICE = "/chat.v1.ChatService";

interface CallOptions {
  user?: string;
  /** Compress the request with gzip (grpc-encoding: gzip, compressed flag set). */
  gzip?: boolean;
  headers?: Record<string, string>;
}

/**
 * One gRPC call made by hand. The response's length-prefixed messages are parsed as they come,
 * whatever the DATA chunks: a message may straddle chunks, and a chunk may hold many messages.
 */
class RawCall {
  headers: http2.IncomingHttpHeaders | undefined;
  trailers: http2.IncomingHttpHeaders | undefined;
  closed = false;
  /** DATA chunks received, and how many of them ended in the middle of a message. */
  chunks = 0;
  straddled = 0;
  readonly messages: Uint8Array[] = [];
  private pending: Buffer = Buffer.alloc(0);
  readonly req: http2.ClientHttp2Stream;
  readonly done: Promise<void>;

  constructor(session: http2.ClientHttp2Session, method: string, request: Uint8Array, opts: CallOptions) {
    const h: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": `${SERVICE}/${method}`,
      "content-type": "application/grpc",
      te: "trailers",
      ...opts.headers,
    };
    if (opts.user) h["x-user"] = opts.user;
    if (opts.gzip) h["grpc-encoding"] = "gzip";
    this.req = session.request(h);
    this.req.on("error", () => {});
    this.req.on("response", (headers) => (this.headers = headers));
    this.req.on("trailers", (trailers) => (this.trailers = trailers));
    this.req.on("data", (chunk: Buffer) => this.onData(chunk));
    this.done = new Promise((resolve) => this.req.on("close", () => ((this.closed = true), resolve())));
    this.req.end(opts.gzip ? envelope(gzipSync(request), 1) : envelope(request));
  }

  private onData(chunk: Buffer): void {
    this.chunks++;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (this.pending.length - at >= 5) {
      const len = this.pending.readUInt32BE(at + 1);
      if (this.pending.length - at < 5 + len) break;
      let body: Uint8Array = this.pending.subarray(at + 5, at + 5 + len);
      if (this.pending[at] & 1) {
        expect(this.headers?.["grpc-encoding"]).toBe("gzip");
        body = gunzipSync(body);
      }
      this.messages.push(body);
      at += 5 + len;
    }
    this.pending = this.pending.subarray(at);
    if (this.pending.length > 0) this.straddled++;
  }

  events(): ChatEvent[] {
    return this.messages.map((m) => fromBinary(ChatEventSchema, m));
  }

  /** grpc-status and the decoded grpc-message, from the trailers or a trailers-only response. */
  status(): { code: number; message: string; raw: string } | undefined {
    const t = this.trailers?.["grpc-status"] !== undefined ? this.trailers : this.headers?.["grpc-status"] !== undefined ? this.headers : undefined;
    if (!t) return undefined;
    const raw = String(t["grpc-message"] ?? "");
    return { code: Number(t["grpc-status"]), message: decodeURIComponent(raw), raw };
  }

  /** The status once the call ended; fails if the call ended without one. */
  async finished(ms = 5000): Promise<{ code: number; message: string; raw: string }> {
    await eventually(() => this.closed, ms, "the call to end");
    const s = this.status();
    if (!s) throw new Error(`the call ended without grpc-status (rstCode ${this.req.rstCode}, headers ${JSON.stringify(this.headers)})`);
    return s;
  }

  /** Cancels the call as a client does: RST_STREAM CANCEL. */
  cancel(): void {
    this.req.close(http2.constants.NGHTTP2_CANCEL);
  }
}

function call<T extends DescMessage>(session: http2.ClientHttp2Session, method: string, schema: T, init: MessageInitShape<T>, opts: CallOptions = {}): RawCall {
  return new RawCall(session, method, toBinary(schema, create(schema, init)), opts);
}

const labels = (type: string, method: string) => `grpc_type="${type}",grpc_service="chat.v1.ChatService",grpc_method="${method}"`;
const SUB = labels("server_stream", "Subscribe");
const SEND = labels("unary", "Send");

let server: ServerProcess;
let session: http2.ClientHttp2Session;
const sessions: http2.ClientHttp2Session[] = [];

function connect(): http2.ClientHttp2Session {
  const s = http2.connect(server.url);
  s.on("error", () => {});
  sessions.push(s);
  return s;
}

beforeAll(async () => {
  // No rate limit: one test sends 200 messages at once as one user.
  server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0" });
  session = connect();
});
afterAll(async () => {
  for (const s of sessions) s.destroy();
  await server.stop();
});

/** Sends `text` to `room` over the direct path and returns the stored message. */
async function send(room: string, text: string, user = "sam") {
  const c = call(session, "Send", SendRequestSchema, { target: { case: "room", value: room }, text }, { user });
  const status = await c.finished();
  expect(status).toEqual({ code: 0, message: "", raw: "" });
  expect(c.messages.length).toBe(1);
  return fromBinary(SendResponseSchema, c.messages[0]).message!;
}

describe("plain and gzip-compressed requests: Subscribe served alike", () => {
  test("the same events in the same order, then the same cancel", async () => {
    const room = "both-paths";
    const direct = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, { user: "dora" });
    const gzipped = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, { user: "dora", gzip: true });
    for (const c of [direct, gzipped]) await eventually(() => c.events().some((e) => e.kind.case === "joined"), 5000, "joined");

    // Both served directly: the request's content type echoed, the response not compressed (a
    // server may answer uncompressed whatever the client sent; the events' frames are shared).
    for (const c of [direct, gzipped]) {
      expect(Number(c.headers?.[":status"])).toBe(200);
      expect(c.headers?.["content-type"]).toBe("application/grpc");
      expect(c.headers?.["grpc-encoding"]).toBeUndefined();
    }

    const sent = [];
    for (const text of ["one", "two: ça va? 100%", "three\nlines\nhere"]) sent.push(await send(room, text));
    expect(sent.map((m) => m.seq)).toEqual([1n, 2n, 3n]);

    const messagesOf = (c: RawCall) => c.events().flatMap((e) => (e.kind.case === "message" ? [e.kind.value] : []));
    for (const c of [direct, gzipped]) await eventually(() => messagesOf(c).length === 3, 5000, "3 messages");

    // Presence notices depend on which of the two sessions joined first; everything else is equal.
    const shape = (c: RawCall) =>
      c
        .events()
        .filter((e) => e.kind.case !== "presence")
        .map((e) => e.kind.case);
    expect(shape(direct)).toEqual(["ready", "joined", "message", "message", "message"]);
    expect(shape(gzipped)).toEqual(shape(direct));
    const joined = (c: RawCall) => c.events().find((e) => e.kind.case === "joined")!.kind.value;
    expect(joined(direct)).toEqual(joined(gzipped));
    for (const c of [direct, gzipped]) {
      expect(messagesOf(c).map((m) => [m.seq, m.text, m.id, m.from])).toEqual(sent.map((m) => [m.seq, m.text, m.id, "sam"]));
      expect(c.closed).toBe(false);
    }

    direct.cancel();
    gzipped.cancel();
    await Promise.all([direct.done, gzipped.done]);
    expect(direct.req.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(gzipped.req.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    // The server let go of both sessions.
    await eventually(async () => (await scrape(server.metricsUrl)).get('edgechat_sessions_open{protocol="grpc"}') === 0, 5000, "no grpc session left open");
  });

  test("the same refusal: status and grpc-message of a bad room, and of a missing user", async () => {
    for (const init of [{ rooms: ["café au lait"] }, { rooms: ["ok", "dm:zed:amy"] }]) {
      const direct = await call(session, "Subscribe", SubscribeRequestSchema, init, { user: "dora" }).finished();
      const gzipped = await call(session, "Subscribe", SubscribeRequestSchema, init, { user: "dora", gzip: true }).finished();
      expect(direct.code).toBe(Code.InvalidArgument);
      expect(direct.message.length).toBeGreaterThan(10);
      // The same text once decoded; the encodings may differ (Connect also escapes spaces, which
      // the spec allows either way).
      expect({ code: gzipped.code, message: gzipped.message }).toEqual({ code: direct.code, message: direct.message });
    }
    const direct = await call(session, "Subscribe", SubscribeRequestSchema, { rooms: ["x"] }).finished();
    const gzipped = await call(session, "Subscribe", SubscribeRequestSchema, { rooms: ["x"] }, { gzip: true }).finished();
    expect(direct.code).toBe(Code.Unauthenticated);
    expect({ code: gzipped.code, message: gzipped.message }).toEqual({ code: direct.code, message: direct.message });
  });

  test("a server-side deadline (grpc-timeout) ends both with DEADLINE_EXCEEDED in trailers, after their events", async () => {
    const room = "both-deadline";
    const opts = { user: "dora", headers: { "grpc-timeout": "800m" } };
    const direct = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, opts);
    const gzipped = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, { ...opts, gzip: true });
    const [a, b] = await Promise.all([direct.finished(), gzipped.finished()]);
    expect(a.code).toBe(Code.DeadlineExceeded);
    expect(b.code).toBe(Code.DeadlineExceeded);
    for (const c of [direct, gzipped]) {
      // A stream that had started: the status is in trailers, after its events.
      expect(c.trailers?.["grpc-status"]).toBe(String(Code.DeadlineExceeded));
      expect(
        c
          .events()
          .slice(0, 2)
          .map((e) => e.kind.case),
      ).toEqual(["ready", "joined"]);
    }
  });
});

/**
 * One call with a body built by hand, in any protocol, on HTTP/2 or (with fetch) HTTP/1.1;
 * resolves with the status as the protocol carries it: gRPC trailers (or headers), a gRPC-Web
 * trailer envelope, a Connect end-stream JSON.
 */
async function exchange(path: string, contentType: string, body: Uint8Array, headers: Record<string, string> = {}, httpVersion: "2" | "1.1" = "2") {
  let head: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders = {};
  let data: Buffer;
  if (httpVersion === "1.1") {
    const res = await fetch(server.url + path, {
      method: "POST",
      headers: { "content-type": contentType, "x-user": "eve", ...headers },
      body: Buffer.from(body),
      signal: AbortSignal.timeout(5000),
    });
    head = Object.fromEntries(res.headers);
    data = Buffer.from(await res.arrayBuffer());
  } else {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": contentType, te: "trailers", "x-user": "eve", ...headers });
    req.on("error", () => {});
    const chunks: Buffer[] = [];
    req.on("response", (h) => (head = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((resolve) => req.on("close", resolve));
    // Leave the request open for a stream: the answer must not wait for the client's end.
    req.write(body);
    if (!contentType.startsWith("application/connect") && !path.endsWith("/Chat")) req.end();
    await Promise.race([ended, Bun.sleep(5000)]);
    req.close();
    data = Buffer.concat(chunks);
  }
  const frames: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= data.length; ) {
    const len = data.readUInt32BE(at + 1);
    frames.push({ flags: data[at], data: data.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  if (contentType.startsWith("application/connect")) {
    const end = frames.find((f) => f.flags & 2);
    const error = end ? (JSON.parse(end.data.toString()) as { error?: { code: string; message: string } }).error : undefined;
    return { code: error?.code, message: error?.message };
  }
  const t = contentType.startsWith("application/grpc-web")
    ? Object.fromEntries(
        (frames.find((f) => f.flags & 0x80)?.data.toString() ?? "")
          .split("\r\n")
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]),
      )
    : trailers["grpc-status"] !== undefined
      ? trailers
      : head;
  const code = Number(t["grpc-status"]);
  return { code: code === Code.InvalidArgument ? "invalid_argument" : String(code), message: decodeURIComponent(String(t["grpc-message"] ?? "")) };
}

describe("a bad request envelope gets the same answer on every path and protocol", () => {
  const send = toBinary(SendRequestSchema, create(SendRequestSchema, { target: { case: "room", value: "envelopes" }, text: "x" }));
  const ping = toBinary(ChatRequestSchema, create(ChatRequestSchema, { kind: { case: "ping", value: { nonce: "1" } } }));
  const subscribe = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: ["envelopes"] }));
  // Every call here is served directly but the unary one on HTTP/1.1, which goes through connect-node.
  const calls = [
    ["gRPC Send", `${SERVICE}/Send`, "application/grpc", send, "2"],
    ["gRPC Chat", `${SERVICE}/Chat`, "application/grpc", ping, "2"],
    ["gRPC-Web Send", `${SERVICE}/Send`, "application/grpc-web+proto", send, "2"],
    ["gRPC-Web Subscribe", `${SERVICE}/Subscribe`, "application/grpc-web+proto", subscribe, "2"],
    ["Connect Chat", `${SERVICE}/Chat`, "application/connect+proto", ping, "2"],
    ["gRPC-Web Subscribe on HTTP/1.1", `${SERVICE}/Subscribe`, "application/grpc-web+proto", subscribe, "1.1"],
    ["Connect Subscribe on HTTP/1.1", `${SERVICE}/Subscribe`, "application/connect+proto", subscribe, "1.1"],
    ["gRPC-Web Send on HTTP/1.1", `${SERVICE}/Send`, "application/grpc-web+proto", send, "1.1"],
  ] as const;

  test("reserved flag bits (gRPC-Web's trailer flag 0x80 too): InvalidArgument naming them", async () => {
    for (const [what, path, type, body, httpVersion] of calls) {
      expect([what, await exchange(path, type, envelope(body, 0x80), {}, httpVersion)]).toEqual([
        what,
        { code: "invalid_argument", message: "invalid envelope flags 128: only the compressed bit (1) is defined for a request" },
      ]);
    }
  });

  test("the compressed bit without a compression: InvalidArgument naming the protocol's header", async () => {
    for (const [what, path, type, body, httpVersion] of calls) {
      const header = type.startsWith("application/connect") ? "connect-content-encoding" : "grpc-encoding";
      expect([what, await exchange(path, type, envelope(body, 1), {}, httpVersion)]).toEqual([
        what,
        { code: "invalid_argument", message: `the request message is compressed but ${header} names no compression` },
      ]);
    }
  });
});

test("200 messages sent at once reach a direct Subscribe complete and in order", async () => {
  const room = "burst";
  const sub = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, { user: "watcher" });
  await eventually(() => sub.events().some((e) => e.kind.case === "joined"), 5000, "joined");

  // The sends go over a separate connection, with connect-node's gRPC transport (the direct path too).
  const client = chatClient(transport(server.url, "grpc"));
  const N = 200;
  const pad = " lorem ipsum".repeat(20);
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      client.send({ target: { case: "room", value: room }, text: `burst ${i}${pad}` }, { headers: { "x-user": `u${i % 7}` } }),
    ),
  );
  expect(new Set(results.map((r) => r.message!.seq)).size).toBe(N);

  const messages = () => sub.events().flatMap((e) => (e.kind.case === "message" ? [e.kind.value] : []));
  await eventually(() => messages().length >= N, 10_000, `${N} messages`);
  const got = messages();
  expect(got.length).toBe(N);
  expect(got.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => BigInt(i + 1)));
  // Each is the message the Send stored under that seq.
  const bySeq = new Map(results.map((r) => [r.message!.seq, r.message!]));
  for (const m of got) expect(m).toEqual(bySeq.get(m.seq)!);
  expect(sub.closed).toBe(false);
  sub.cancel();
  await sub.done;
});

describe("direct unary Send", () => {
  test("returns the stored message with its seq and id", async () => {
    const c = call(session, "Send", SendRequestSchema, { target: { case: "room", value: "unary" }, text: "hello", clientMsgId: "c-1" }, { user: "ann" });
    const status = await c.finished();
    expect(status).toEqual({ code: 0, message: "", raw: "" });
    expect(c.headers?.["content-type"]).toBe("application/grpc");
    expect(c.trailers?.["grpc-status"]).toBe("0");
    expect(c.messages.length).toBe(1);
    const m = fromBinary(SendResponseSchema, c.messages[0]).message!;
    expect(m.seq).toBe(1n);
    expect(m.id.length).toBeGreaterThan(0);
    expect(m).toMatchObject({ room: "unary", from: "ann", text: "hello", clientMsgId: "c-1" });
    const again = await send("unary", "again", "ann");
    expect(again.seq).toBe(2n);
    expect(again.id).not.toBe(m.id);
  });

  test("a bad room name: InvalidArgument, with a percent-encoded grpc-message naming the problem", async () => {
    const c = call(session, "Send", SendRequestSchema, { target: { case: "room", value: "café 100%" }, text: "hi" }, { user: "ann" });
    const status = await c.finished();
    expect(status.code).toBe(Code.InvalidArgument);
    expect(c.messages.length).toBe(0);
    expect(status.raw).toContain("caf%C3%A9 100%25");
    expect(/^[\x20-\x7e]*$/.test(status.raw)).toBe(true);
    expect(status.message).toBe('room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "café 100%")');
  });

  test("no user: Unauthenticated, saying how to name one", async () => {
    const status = await call(session, "Send", SendRequestSchema, { target: { case: "room", value: "unary" }, text: "hi" }).finished();
    expect(status.code).toBe(Code.Unauthenticated);
    expect(status.message).toContain("x-user");
  });

  test("an invalid grpc-timeout: InvalidArgument naming the header; nothing is stored", async () => {
    const room = "timeouts";
    for (const value of ["abc", "1s", "123456789S"]) {
      const status = await call(
        session,
        "Send",
        SendRequestSchema,
        { target: { case: "room", value: room }, text: "never" },
        { user: "ann", headers: { "grpc-timeout": value } },
      ).finished();
      expect(status.code).toBe(Code.InvalidArgument);
      expect(status.message).toContain(`grpc-timeout "${value}"`);
    }
    // The same with a compressed request.
    const gzipped = await call(
      session,
      "Send",
      SendRequestSchema,
      { target: { case: "room", value: room }, text: "never" },
      { user: "ann", gzip: true, headers: { "grpc-timeout": "abc" } },
    ).finished();
    expect(gzipped.code).toBe(Code.InvalidArgument);
    const first = await send(room, "first stored", "ann");
    expect(first.seq).toBe(1n);
  });

  test("an already-expired deadline (grpc-timeout 1n): OK with the stored message or DEADLINE_EXCEEDED; a Subscribe ends DEADLINE_EXCEEDED", async () => {
    // A unary call racing its deadline may end either way (DEADLINE_EXCEEDED "may be returned even
    // if the operation has completed successfully"; the deadline's timer usually fires while the
    // commit is on the writer thread), but OK only with the stored message.
    const codes = [];
    for (const gzip of [false, true]) {
      const room = gzip ? "expired-gzip" : "expired-plain";
      const c = call(
        session,
        "Send",
        SendRequestSchema,
        { target: { case: "room", value: room }, text: "late" },
        { user: "ann", gzip, headers: { "grpc-timeout": "1n" } },
      );
      const status = await c.finished();
      codes.push(status.code);
      expect([Code.DeadlineExceeded, 0]).toContain(status.code);
      if (status.code === 0) {
        expect(c.messages.length).toBe(1);
        const m = fromBinary(SendResponseSchema, c.messages[0]).message!;
        expect(m.seq).toBe(1n);
      } else {
        expect(c.messages.length).toBe(0);
      }
    }
    expect(codes.length).toBe(2);
    // A stream cannot finish before its deadline: it is ended with DEADLINE_EXCEEDED, plain and compressed.
    for (const gzip of [false, true]) {
      const sub = call(session, "Subscribe", SubscribeRequestSchema, { rooms: ["expired-sub"] }, { user: "ann", gzip, headers: { "grpc-timeout": "1n" } });
      const status = await sub.finished();
      expect(status.code).toBe(Code.DeadlineExceeded);
      // The same words as connect-node's, plain and compressed.
      expect(status.message).toBe("the operation timed out");
    }
  });
});

describe("metrics", () => {
  test("a Subscribe canceled after N events: started +1, sent +N or more, handled Canceled +1", async () => {
    const room = "metered";
    const before = await scrape(server.metricsUrl);
    const sub = call(session, "Subscribe", SubscribeRequestSchema, { rooms: [room] }, { user: "mia" });
    await eventually(() => sub.events().some((e) => e.kind.case === "joined"), 5000, "joined");
    for (let i = 0; i < 3; i++) await send(room, `m${i}`, "sam");
    await eventually(() => sub.events().filter((e) => e.kind.case === "message").length === 3, 5000, "3 messages");
    const n = sub.events().length;
    expect(n).toBeGreaterThanOrEqual(5);
    sub.cancel();
    await sub.done;

    const key = (name: string, l: string) => `${name}{${l}}`;
    const delta = (after: Map<string, number>, k: string) => (after.get(k) ?? NaN) - (before.get(k) ?? 0);
    const canceled = key("grpc_server_handled_total", `${SUB},grpc_code="Canceled"`);
    const after = await eventually(
      async () => {
        const m = await scrape(server.metricsUrl);
        if (!(delta(m, canceled) >= 1)) throw new Error(`handled Canceled is ${m.get(canceled)}`);
        return m;
      },
      5000,
      "the canceled Subscribe to be counted",
    );
    expect(delta(after, key("grpc_server_started_total", SUB))).toBe(1);
    expect(delta(after, key("grpc_server_msg_received_total", SUB))).toBe(1);
    expect(delta(after, key("grpc_server_msg_sent_total", SUB))).toBeGreaterThanOrEqual(n);
    expect(delta(after, canceled)).toBe(1);
    expect(delta(after, key("grpc_server_handled_total", `${SUB},grpc_code="OK"`))).toBe(0);
    expect(delta(after, key("grpc_server_handling_seconds_count", SUB))).toBe(1);
    // The three Sends were counted too.
    expect(delta(after, key("grpc_server_started_total", SEND))).toBe(3);
    expect(delta(after, key("grpc_server_handled_total", `${SEND},grpc_code="OK"`))).toBe(3);
    expect(after.get('edgechat_sessions_open{protocol="grpc"}')).toBe(0);
  });

  test("a Send: started, received, sent and handled OK each +1; a refused one counts its code", async () => {
    const before = await scrape(server.metricsUrl);
    await send("metered-send", "counted", "sam");
    const refused = await call(session, "Send", SendRequestSchema, { target: { case: "room", value: "no good" }, text: "x" }, { user: "sam" }).finished();
    expect(refused.code).toBe(Code.InvalidArgument);
    const after = await scrape(server.metricsUrl);
    const delta = (name: string, l = SEND) => (after.get(`${name}{${l}}`) ?? NaN) - (before.get(`${name}{${l}}`) ?? 0);
    expect(delta("grpc_server_started_total")).toBe(2);
    expect(delta("grpc_server_msg_received_total")).toBe(2);
    expect(delta("grpc_server_msg_sent_total")).toBe(1);
    expect(delta("grpc_server_handled_total", `${SEND},grpc_code="OK"`)).toBe(1);
    expect(delta("grpc_server_handled_total", `${SEND},grpc_code="InvalidArgument"`)).toBe(1);
    expect(delta("grpc_server_handling_seconds_count")).toBe(2);
  });
});
