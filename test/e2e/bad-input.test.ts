// Bad input from clients: every refusal carries the precise Connect code and a message a person can
// act on, and it never disturbs anyone else: in every test a healthy session of another user, on an
// open Chat stream, keeps receiving the messages sent after the bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { ChatEventSchema, ChatService, PresenceAction, SendRequestSchema, SubscribeRequestSchema, type ChatEvent } from "../../app/gen/chat/v1/chat_pb.ts";
import { chatClient, openChat, transport, failure } from "../support/clients.ts";
import { envelope } from "../../app/transport/event-frames.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

type Chat = Client<typeof ChatService>;
type ChatHandle = ReturnType<typeof openChat>;

const as = (user: string) => ({ headers: { "x-user": user } });

/** A healthy session: `user` on an open Chat stream, joined to `room`. */
async function healthySession(client: Chat, room: string, user = "hana"): Promise<ChatHandle> {
  const h = openChat(client, user);
  await h.send({ kind: { case: "join", value: { room } } });
  await h.reader.until((r) => r.of("joined").some((j) => j.room === room), 5000, `${user} joined ${room}`);
  return h;
}

/** Posts `text` to `room` as another user and waits for the healthy session to receive it. */
async function stillDelivers(client: Chat, h: ChatHandle, room: string, text: string, from = "sam"): Promise<void> {
  const res = await client.send({ target: { case: "room", value: room }, text }, as(from));
  expect(res.message?.from).toBe(from);
  const [m] = await h.reader.until(
    (r) => {
      const ms = r.messages(room).filter((x) => x.text === text);
      return ms.length > 0 ? ms : undefined;
    },
    5000,
    `"${text}" delivered to the healthy session`,
  );
  expect(m.seq).toBe(res.message!.seq);
  expect(h.reader.done).toBe(false);
  expect(h.reader.error).toBeUndefined();
}

/** A call made by hand over HTTP/2 with the gRPC protocol, for what no client library will do. */
interface RawCall {
  readonly trailers: Record<string, string> | undefined;
  readonly closed: boolean;
  readonly rstCode: number | undefined;
  /** Starts reading the response, for a call opened with read: false. */
  read(): void;
  /** The response's messages so far, decoded as ChatEvents. */
  events(): ChatEvent[];
  dispose(): void;
}

function rawCall(url: string, path: string, user: string, body: Uint8Array[], opts: { end: boolean; read: boolean }): RawCall {
  // A small, explicit flow-control window, so that a client that does not read blocks the server soon.
  const session = http2.connect(url, { settings: { initialWindowSize: 65_535 } });
  session.on("error", () => {});
  const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", "x-user": user });
  req.on("error", () => {});
  const state = { data: Buffer.alloc(0), trailers: undefined as Record<string, string> | undefined, closed: false };
  req.on("trailers", (t) => (state.trailers = { ...t } as Record<string, string>));
  req.on("close", () => (state.closed = true));
  const read = () => req.on("data", (chunk: Buffer) => (state.data = Buffer.concat([state.data, chunk])));
  if (opts.read) read();
  for (const chunk of body) req.write(chunk);
  if (opts.end) req.end();
  return {
    get trailers() {
      return state.trailers;
    },
    get closed() {
      return state.closed;
    },
    get rstCode() {
      return state.closed ? req.rstCode : undefined;
    },
    read,
    events() {
      const out: ChatEvent[] = [];
      for (let at = 0; at + 5 <= state.data.length; ) {
        const len = state.data.readUInt32BE(at + 1);
        if (at + 5 + len > state.data.length) break;
        out.push(fromBinary(ChatEventSchema, state.data.subarray(at + 5, at + 5 + len)));
        at += 5 + len;
      }
      return out;
    },
    dispose() {
      req.close();
      session.destroy();
    },
  };
}

async function closeAll(...hs: ChatHandle[]): Promise<void> {
  for (const h of hs) h.close();
  await Promise.all(hs.map((h) => h.reader.finished));
}

describe("dev server with default limits", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    server = await startServer();
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  test("text over 4096 bytes: InvalidArgument by Send, an error event on the stream, which stays open", async () => {
    const room = "big-text";
    const h = await healthySession(client, room);

    // Exactly the limit passes; one byte more does not. The limit is in bytes of UTF-8, not characters.
    const ok = await client.send({ target: { case: "room", value: room }, text: "x".repeat(4096) }, as("ann"));
    expect(ok.message?.text.length).toBe(4096);
    const over = await failure(client.send({ target: { case: "room", value: room }, text: "x".repeat(4097) }, as("ann")));
    expect(over.code).toBe(Code.InvalidArgument);
    expect(over.rawMessage).toBe("text is 4097 bytes; the limit is 4096 bytes of UTF-8");
    const wide = await failure(client.send({ target: { case: "room", value: room }, text: "é".repeat(2049) }, as("ann")));
    expect(wide.code).toBe(Code.InvalidArgument);
    expect(wide.rawMessage).toContain("text is 4098 bytes; the limit is 4096");

    // The same on a Chat stream: an error event naming the request, then the stream goes on.
    const a = openChat(client, "ann");
    await a.send({ kind: { case: "join", value: { room } } });
    await a.reader.until((r) => r.of("joined").length === 1, 5000, "ann joined");
    await a.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "y".repeat(5000), clientMsgId: "too-big" } } });
    const [err] = await a.reader.until((r) => (r.of("error").length === 1 ? r.of("error") : undefined), 5000, "error event");
    expect(err).toMatchObject({ code: "invalid_argument", clientMsgId: "too-big" });
    expect(err.text).toContain("5000 bytes; the limit is 4096 bytes");
    await a.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "after the big one", clientMsgId: "fine" } } });
    const [ack] = await a.reader.until((r) => (r.of("ack").length === 1 ? r.of("ack") : undefined), 5000, "ack");
    expect(ack.clientMsgId).toBe("fine");
    expect(ack.message?.text).toBe("after the big one");
    expect(a.reader.done).toBe(false);

    await h.reader.until((r) => r.messages(room).some((m) => m.text === "after the big one"), 5000, "ann's message delivered");
    // Nothing refused was stored: the room holds the 4096-byte message and ann's last one only.
    const history = await client.history({ room }, as("hana"));
    expect(history.messages.map((m) => m.text.length)).toEqual([4096, "after the big one".length]);
    await stillDelivers(client, h, room, "still here after big text");
    await closeAll(a, h);
  });

  test("empty text: InvalidArgument by Send and on the stream", async () => {
    const room = "empty-text";
    const h = await healthySession(client, room);
    const e = await failure(client.send({ target: { case: "room", value: room }, text: "" }, as("ann")));
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.rawMessage).toContain("text is empty");

    const a = openChat(client, "ann");
    await a.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "", clientMsgId: "nothing" } } });
    const [err] = await a.reader.until((r) => (r.of("error").length === 1 ? r.of("error") : undefined), 5000, "error event");
    expect(err).toMatchObject({ code: "invalid_argument", clientMsgId: "nothing", text: "text is empty: send 1 or more characters" });
    await stillDelivers(client, h, room, "after empty text");
    await closeAll(a, h);
  });

  test("text that is not UTF-8: invalid_argument over Connect (binary and JSON), gRPC-Web and gRPC", async () => {
    const room = "bad-utf8";
    const h = await healthySession(client, room);

    // A valid SendRequest, then the byte of its marker character replaced by 0xff, which is never
    // valid in UTF-8. The text field is `1a 03 61 58 62` ("aXb").
    const bytes = toBinary(SendRequestSchema, create(SendRequestSchema, { target: { case: "room", value: room }, text: "aXb" }));
    const at = Buffer.from(bytes).indexOf(Buffer.from([0x1a, 0x03, 0x61, 0x58, 0x62]));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = 0xff;
    const res = await fetch(`${server.url}/chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { "content-type": "application/proto", "connect-protocol-version": "1", "x-user": "ann" },
      body: bytes,
    });
    const body = (await res.json()) as { code: string; message: string };
    expect(body).toEqual({ code: "invalid_argument", message: "cannot decode the request: a string field is not valid UTF-8" });
    expect(res.status).toBe(400);

    // JSON cannot carry a byte 0xff in a string, but it can carry a lone surrogate, which has no
    // UTF-8 encoding either.
    const json = await fetch(`${server.url}/chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", "x-user": "ann" },
      body: `{"room":"${room}","text":"half a pair: \\ud800"}`,
    });
    expect(json.status).toBe(400);
    const jsonBody = (await json.json()) as { code: string; message: string };
    expect(jsonBody.code).toBe("invalid_argument");
    expect(jsonBody.message).toContain("chat.v1.SendRequest.text");
    expect(jsonBody.message).toContain("UTF8");

    // The same bytes over gRPC-Web and gRPC (Send), and in a streaming Connect request (Subscribe,
    // whose room name is not UTF-8): the status is invalid_argument there too.
    const web = await fetch(`${server.url}/chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-user": "ann" },
      body: envelope(bytes),
    });
    const trailer = Buffer.from(await web.arrayBuffer());
    expect(trailer[0]).toBe(0x80);
    const fields = trailer.subarray(5).toString("latin1");
    expect(fields).toContain("grpc-status: 3\r\n");
    expect(decodeURIComponent(/grpc-message: ([^\r\n]+)/.exec(fields)![1])).toBe("cannot decode the request: a string field is not valid UTF-8");

    const grpc = rawCall(server.url, "/chat.v1.ChatService/Send", "ann", [envelope(bytes)], { end: true, read: true });
    await eventually(() => grpc.closed, 5000, "the gRPC call to end");
    expect(grpc.trailers?.["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(decodeURIComponent(grpc.trailers?.["grpc-message"] ?? "")).toContain("UTF-8");
    grpc.dispose();

    const sub = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: ["aXb"] }));
    sub[Buffer.from(sub).indexOf(Buffer.from("aXb")) + 1] = 0xff;
    const stream = await fetch(`${server.url}/chat.v1.ChatService/Subscribe`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", "x-user": "ann" },
      body: envelope(sub),
    });
    const end = Buffer.from(await stream.arrayBuffer());
    expect(end[0]).toBe(0x02); // the end-of-stream message, and nothing before it
    const { error } = JSON.parse(end.subarray(5).toString("utf8")) as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("UTF-8");

    const history = await client.history({ room }, as("hana"));
    expect(history.messages).toEqual([]);
    await stillDelivers(client, h, room, "after bad UTF-8");
    await closeAll(h);
  });

  test("bad room names: InvalidArgument naming the rule, by Send, History and on the stream", async () => {
    const room = "good-room";
    const h = await healthySession(client, room);
    const long = "r".repeat(65);
    for (const bad of ["bad room!", long, ""]) {
      const e = await failure(client.history({ room: bad }, as("ann")));
      expect(e.code).toBe(Code.InvalidArgument);
      expect(e.rawMessage).toContain("room name must be 1 to 64 characters");
    }
    const sent = await failure(client.send({ target: { case: "room", value: "bad room!" }, text: "hi" }, as("ann")));
    expect(sent.code).toBe(Code.InvalidArgument);
    expect(sent.rawMessage).toBe('room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "bad room!")');
    // 64 characters is fine.
    const ok = await client.send({ target: { case: "room", value: "r".repeat(64) }, text: "hi" }, as("ann"));
    expect(ok.message?.room).toBe("r".repeat(64));

    const a = openChat(client, "ann");
    await a.send({ kind: { case: "join", value: { room: "bad room!" } } });
    await a.send({ kind: { case: "join", value: { room: long } } });
    const errs = await a.reader.until((r) => (r.of("error").length === 2 ? r.of("error") : undefined), 5000, "two error events");
    expect(errs.map((e) => e.code)).toEqual(["invalid_argument", "invalid_argument"]);
    expect(errs.map((e) => e.room)).toEqual(["bad room!", long]);
    for (const e of errs) expect(e.text).toContain("room name must be 1 to 64 characters");
    expect(a.reader.of("joined")).toEqual([]);
    await stillDelivers(client, h, room, "after bad room names");
    await closeAll(a, h);
  });

  test("a request over 64 KiB: ResourceExhausted naming the limit", async () => {
    const room = "huge";
    const h = await healthySession(client, room);
    const e = await failure(client.send({ target: { case: "room", value: room }, text: "z".repeat(70_000) }, as("ann")));
    expect(e.code).toBe(Code.ResourceExhausted);
    expect(e.rawMessage).toContain("65536");
    // Over gRPC too, whose framing announces the size up front.
    const grpc = chatClient(transport(server.url, "grpc"));
    const g = await failure(grpc.send({ target: { case: "room", value: room }, text: "z".repeat(70_000) }, as("ann")));
    expect(g.code).toBe(Code.ResourceExhausted);
    expect(g.rawMessage).toContain("65536");

    // A client still sending an oversized request gets the status at once, and the server ends
    // the HTTP/2 stream (RST_STREAM NO_ERROR) rather than leave it open for the rest of the body.
    const prefix = new Uint8Array(5);
    new DataView(prefix.buffer).setUint32(1, 70_007);
    const raw = rawCall(server.url, "/chat.v1.ChatService/Send", "ann", [prefix, new Uint8Array(1000)], { end: false, read: true });
    await eventually(() => raw.closed, 5000, "the oversized request's stream to close");
    expect(raw.trailers?.["grpc-status"]).toBe(String(Code.ResourceExhausted));
    expect(decodeURIComponent(raw.trailers?.["grpc-message"] ?? "")).toContain("larger than configured readMaxBytes 65536");
    expect(raw.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    raw.dispose();

    // On a Chat stream a message over the limit cannot be skipped: the stream ends with it.
    const a = openChat(client, "ann");
    await a.send({ kind: { case: "ping", value: { nonce: "before" } } });
    await a.reader.until((r) => r.of("pong").length === 1, 5000, "pong");
    // The write itself may fail with the stream's error; the reader is what tells.
    await a.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "z".repeat(70_000) } } }).catch(() => {});
    await a.reader.finished;
    expect(a.reader.error?.code).toBe(Code.ResourceExhausted);
    expect(a.reader.error?.rawMessage).toContain("65536");

    await stillDelivers(client, h, room, "after a huge request");
    const history = await client.history({ room }, as("hana"));
    expect(history.messages.map((m) => m.text)).toEqual(["after a huge request"]);
    await closeAll(h);
  });

  test("another pair's direct-message room: PermissionDenied for History, join and Send", async () => {
    const room = "dm-watch";
    const h = await healthySession(client, room);
    const dm = await client.send({ target: { case: "toUser", value: "yan" }, text: "just us" }, as("xia"));
    expect(dm.message?.room).toBe("dm:xia:yan");

    const read = await failure(client.history({ room: "dm:xia:yan" }, as("zed")));
    expect(read.code).toBe(Code.PermissionDenied);
    expect(read.rawMessage).toBe('room "dm:xia:yan" is a direct conversation between two other users');
    const write = await failure(client.send({ target: { case: "room", value: "dm:xia:yan" }, text: "me too" }, as("zed")));
    expect(write.code).toBe(Code.PermissionDenied);
    // Not sorted: not a direct-message room at all.
    const unsorted = await failure(client.history({ room: "dm:yan:xia" }, as("yan")));
    expect(unsorted.code).toBe(Code.InvalidArgument);
    expect(unsorted.rawMessage).toContain("dm:<a>:<b> with the two user ids sorted");

    const z = openChat(client, "zed");
    await z.send({ kind: { case: "join", value: { room: "dm:xia:yan", sinceSeq: 0n } } });
    const [err] = await z.reader.until((r) => (r.of("error").length === 1 ? r.of("error") : undefined), 5000, "error event");
    expect(err).toMatchObject({ code: "permission_denied", room: "dm:xia:yan" });
    expect(err.text).toContain("direct conversation between two other users");
    expect(z.reader.messages()).toEqual([]);
    expect(z.reader.of("joined")).toEqual([]);

    // The pair itself still reads it.
    const own = await client.history({ room: "dm:xia:yan" }, as("yan"));
    expect(own.messages.map((m) => m.text)).toEqual(["just us"]);
    await stillDelivers(client, h, room, "after someone else's DM");
    await closeAll(z, h);
  });

  test("leave of a room not joined: NotFound; an empty request: InvalidArgument; the stream stays open", async () => {
    const room = "leave-watch";
    const h = await healthySession(client, room);
    const a = openChat(client, "ann");
    await a.send({ kind: { case: "leave", value: { room: "never-joined" } } });
    await a.send({});
    await a.send({ kind: { case: "ping", value: { nonce: "still-there" } } });
    const errs = await a.reader.until((r) => (r.of("error").length === 2 ? r.of("error") : undefined), 5000, "two error events");
    expect(errs[0]).toMatchObject({ code: "not_found", room: "never-joined", text: 'you are not in room "never-joined"' });
    expect(errs[1].code).toBe("invalid_argument");
    expect(errs[1].text).toContain("empty request: set one of join, leave, send, edit, delete, react, typing, ping, refresh or read");
    const [pong] = await a.reader.until((r) => (r.of("pong").length === 1 ? r.of("pong") : undefined), 5000, "pong");
    expect(pong.nonce).toBe("still-there");
    await stillDelivers(client, h, room, "after a bad leave");
    await closeAll(a, h);
  });
});

describe("rate limit: 5 messages per second, bursts of 10", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    server = await startServer({ EDGECHAT_RATE_PER_SECOND: "5", EDGECHAT_RATE_BURST: "10" });
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  test("30 quick sends: the burst passes, the rest get ResourceExhausted; other users are not affected", async () => {
    const room = "burst";
    const h = await healthySession(client, room);
    const results: (string | ConnectError)[] = [];
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      try {
        await client.send({ target: { case: "room", value: room }, text: `ann ${i}` }, as("ann"));
        results.push(`ann ${i}`);
      } catch (err) {
        results.push(ConnectError.from(err));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const sent = results.filter((r): r is string => typeof r === "string");
    const refused = results.filter((r): r is ConnectError => r instanceof ConnectError);
    // The burst: the first 10 pass; after them only what 5 per second refilled meanwhile (the 30
    // calls take a few ms, so usually nothing).
    expect(results.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `ann ${i}`));
    expect(sent.length).toBeLessThanOrEqual(10 + Math.floor(5 * seconds));
    expect(refused.length).toBe(30 - sent.length);
    expect(refused.length).toBeGreaterThanOrEqual(10);
    for (const e of refused) {
      expect(e.code).toBe(Code.ResourceExhausted);
      expect(e.rawMessage).toMatch(/^rate limit: at most 5 messages per second \(bursts of 10\); retry in \d+ ms$/);
    }

    // Another user has a bucket of their own.
    for (let i = 0; i < 10; i++) {
      const res = await client.send({ target: { case: "room", value: room }, text: `bob ${i}` }, as("bob"));
      expect(res.message?.from).toBe("bob");
    }

    // On a Chat stream, refusals are error events and the stream goes on.
    const c = openChat(client, "cat");
    const catStarted = performance.now();
    for (let i = 0; i < 15; i++) {
      await c.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: `cat ${i}`, clientMsgId: `cat-${i}` } } });
    }
    await c.send({ kind: { case: "ping", value: { nonce: "after-burst" } } });
    await c.reader.until((r) => r.of("pong").length === 1, 5000, "pong after the burst");
    const catSeconds = (performance.now() - catStarted) / 1000;
    const acks = c.reader.of("ack");
    const errors = c.reader.of("error");
    expect(acks.length + errors.length).toBe(15);
    expect(acks.slice(0, 10).map((a) => a.clientMsgId)).toEqual(Array.from({ length: 10 }, (_, i) => `cat-${i}`));
    expect(acks.length).toBeLessThanOrEqual(10 + Math.floor(5 * catSeconds));
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      expect(e.code).toBe("resource_exhausted");
      expect(e.text).toContain("rate limit");
      expect(e.clientMsgId).toMatch(/^cat-1[0-4]$/);
    }

    // The healthy session got exactly what was accepted, in order.
    const accepted = [...sent, ...Array.from({ length: 10 }, (_, i) => `bob ${i}`), ...acks.map((a) => a.message!.text)];
    await h.reader.until((r) => r.messages(room).length === accepted.length, 5000, "every accepted message");
    expect(h.reader.messages(room).map((m) => m.text)).toEqual(accepted);
    expect(h.reader.messages(room).map((m) => Number(m.seq))).toEqual(accepted.map((_, i) => i + 1));

    // The bucket refills: ann can send again a moment later.
    await eventually(
      () => client.send({ target: { case: "room", value: room }, text: "ann again" }, as("ann")).then(() => true),
      5000,
      "ann's bucket to refill",
    );
    await stillDelivers(client, h, room, "after the burst", "dan");
    await closeAll(c, h);
  });
});

describe("a consumer that never reads (session queue of 50)", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    // No rate limit, so that one test can flood a room quickly.
    server = await startServer({ EDGECHAT_SESSION_QUEUE: "50", EDGECHAT_RATE_PER_SECOND: "0" });
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  const rssKiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, "utf8"))![1]);

  test("is cut off with ResourceExhausted; the healthy session gets everything; memory stays bounded; resume has no gap", async () => {
    const room = "flood";
    const h = await healthySession(client, room);
    const subscribe = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: [room] }));
    // "slow" never reads its Subscribe stream; "late" reads it only once the server has ended it.
    const slow = rawCall(server.url, "/chat.v1.ChatService/Subscribe", "slow", [envelope(subscribe)], { end: true, read: false });
    const late = rawCall(server.url, "/chat.v1.ChatService/Subscribe", "late", [envelope(subscribe)], { end: true, read: false });
    const online = async () => (await client.listOnline({ room }, as("hana"))).users.map((u) => u.user);
    await eventually(async () => (await online()).join() === "hana,late,slow", 5000, "slow and late in the room");

    const left = (user: string) => h.reader.of("presence").some((p) => p.room === room && p.user === user && p.action === PresenceAction.LEFT);
    const N = 300;
    const pad = "·".repeat(1500); // 3000 bytes of UTF-8
    // Warm the server up on another room first, so that the RSS measured next is its steady state.
    for (let i = 0; i < 100; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => client.send({ target: { case: "room", value: "warm-up" }, text: `#${i + j} ${pad}` }, as("warmer"))),
      );
    }
    const rss0 = rssKiB();
    let rssMax = rss0;
    let lateReading = false;
    for (let sent = 0; sent < N; sent += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => client.send({ target: { case: "room", value: room }, text: `#${sent + i} ${pad}` }, as(`sender${i % 5}`))),
      );
      // The healthy session keeps up batch by batch, so its own queue never gets near 50.
      await h.reader.until((r) => r.messages(room).length >= sent + 10, 5000, `the healthy session to get ${sent + 10}`);
      rssMax = Math.max(rssMax, rssKiB());
      if (!lateReading && left("late")) {
        // The server has ended late's session; the final status waits for it to read.
        late.read();
        lateReading = true;
      }
    }

    if (!lateReading) {
      await h.reader.until(() => left("late"), 5000, "late's session to end");
      late.read();
      lateReading = true;
    }

    // Every message reached the healthy session once, in seq order.
    const got = h.reader.messages(room);
    expect(got.map((m) => Number(m.seq))).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(new Set(got.map((m) => m.text.split(" ")[0])).size).toBe(N);
    // Both stuck sessions were ended: they left the room, and the server holds nothing for them.
    await h.reader.until(() => left("slow"), 5000, "slow's session to end");
    expect(await online()).toEqual(["hana"]);
    // 300 x 3 KB went through; the server's RSS stayed within a bound that an unbounded queue
    // per stuck session would not meet for long.
    expect(rssMax - rss0).toBeLessThan(64 * 1024);

    // late reads: the messages that fit before it fell behind, seq 1.. with no gap, then
    // RESOURCE_EXHAUSTED with a message that says what to do.
    await eventually(() => late.closed, 5000, "late's stream to end");
    expect(late.trailers?.["grpc-status"]).toBe(String(Code.ResourceExhausted));
    expect(decodeURIComponent(late.trailers?.["grpc-message"] ?? "")).toBe(
      "this stream fell 50 events behind and was closed; reconnect and resume with since_seq",
    );
    const lateEvents = late.events();
    expect(lateEvents[0].kind.case).toBe("ready");
    const lateSeqs = lateEvents.flatMap((e) => (e.kind.case === "message" ? [Number(e.kind.value.seq)] : []));
    expect(lateSeqs.length).toBeGreaterThan(0);
    expect(lateSeqs.length).toBeLessThan(N);
    expect(lateSeqs).toEqual(Array.from({ length: lateSeqs.length }, (_, i) => i + 1));

    // slow never reads: the server cannot even write the status, so it resets the stream
    // (ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED).
    await eventually(() => slow.closed, 10_000, "slow's stream to be reset");
    expect(slow.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(slow.trailers).toBeUndefined();

    // Fresh sessions resume with since_seq: everything after it, no gap, no duplicate, then live.
    const lateAgain = openChat(client, "late");
    const k = lateSeqs.length;
    await lateAgain.send({ kind: { case: "join", value: { room, sinceSeq: BigInt(k) } } });
    const slowAgain = openChat(client, "slow");
    await slowAgain.send({ kind: { case: "join", value: { room, sinceSeq: 0n } } });
    await stillDelivers(client, h, room, "live after the flood");
    const last = N + 1;
    for (const [who, session, from] of [
      ["late", lateAgain, k + 1],
      ["slow", slowAgain, 1],
    ] as const) {
      await session.reader.until((r) => r.messages(room).some((m) => Number(m.seq) === last), 10_000, `${who} to catch up`);
      const seqs = session.reader.messages(room).map((m) => Number(m.seq));
      expect(seqs).toEqual(Array.from({ length: last - from + 1 }, (_, i) => from + i));
      expect(session.reader.error).toBeUndefined();
    }
    expect(slowAgain.reader.messages(room).map((m) => m.text)).toEqual(h.reader.messages(room).map((m) => m.text));

    slow.dispose();
    late.dispose();
    await closeAll(lateAgain, slowAgain, h);
  }, 30_000);

  test("Connect over HTTP/1.1 and HTTP/2: a reader that stops is cut off, and the server lets go of its connection", async () => {
    const room = "flood-connect";
    const body = envelope(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: [room] })));
    // HTTP/2: a Connect stream that is never read.
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const h2 = session.request({
      ":method": "POST",
      ":path": "/chat.v1.ChatService/Subscribe",
      "content-type": "application/connect+proto",
      "x-user": "stops2",
    });
    h2.on("error", () => {});
    h2.pause();
    h2.end(body);
    // HTTP/1.1: the same on a socket of its own, never read.
    const h1 = net.connect(server.port, "127.0.0.1");
    h1.on("error", () => {});
    h1.pause();
    h1.write(
      `POST /chat.v1.ChatService/Subscribe HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+proto\r\nx-user: stops1\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    h1.write(body);
    const online = async () => (await client.listOnline({ room }, as("hana"))).users.map((u) => u.user);
    await eventually(async () => (await online()).join() === "stops1,stops2", 5000, "both in the room");
    const local = await new Promise<number>((resolve) => (h1.localPort ? resolve(h1.localPort) : h1.once("connect", () => resolve(h1.localPort!))));
    // Whether a process holds the server's side of the connection from client port `port`
    // (/proc/net/tcp and tcp6: local and remote address, ..., inode in field 9; 0 for an orphan).
    const held = (port: number) => {
      const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
      const rows = ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((f) =>
        readFileSync(f, "utf8")
          .split("\n")
          .map((l) => l.trim().split(/\s+/)),
      );
      const row = rows.find((f) => f[1]?.endsWith(`:${hex(server.port)}`) && f[2]?.endsWith(`:${hex(port)}`));
      return row !== undefined && row[9] !== "0";
    };
    expect(held(local)).toBe(true);

    // More than the kernel's socket buffers hold (megabytes on loopback), so that the queue fills.
    const pad = "·".repeat(1500);
    for (let sent = 0; sent < 4000; sent += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => client.send({ target: { case: "room", value: room }, text: `#${sent + i} ${pad}` }, as(`flooder${i % 5}`))),
      );
    }
    await eventually(async () => (await online()).length === 0, 5000, "both sessions to end");
    // HTTP/2: the stream is reset. HTTP/1.1 has no reset: the server closes the socket. The
    // client, not reading, cannot see that; the server's side of the connection shows it: no
    // longer held by the process (an orphan in the kernel, inode 0, or gone).
    await eventually(() => h2.closed, 5000, "the HTTP/2 stream to be reset");
    expect(h2.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await eventually(() => !held(local), 5000, "the server to let go of the HTTP/1.1 connection");
    h1.destroy();
    session.destroy();
  }, 30_000);
});
