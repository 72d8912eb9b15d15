// The load generator: one Node process for every contender, driven by bench/run.ts over stdin and
// stdout (one JSON object a line: {id, op, args} in, {id, result} or {id, error} out; progress on
// stderr). Everything it talks to is on 127.0.0.1; every loop is bounded in count and time.
//
// Clients:
// - the load itself (subscribers, and the senders that push messages) speaks the wire protocol
//   directly, with the same small code for every contender, so that a delivery or a send costs the
//   load generator the same little whatever the server: gRPC (Subscribe and Send) on a minimal
//   HTTP/2 client over a TCP socket for edgechat and the grpc-js baseline, Engine.IO 4 / socket.io 5
//   on a minimal websocket client for the socket.io baseline. One connection per user, as real
//   clients have. (node:http2 costs the client tens of µs per DATA frame, and the @grpc/grpc-js
//   client several times more per call: on a 2-core machine either would make the load generator,
//   not the server, the limit.)
// - each server's own client library makes the cold start's first RPC, and the fan-out senders
//   with --library-senders: @connectrpc/connect-node's gRPC transport for edgechat, @grpc/grpc-js
//   for the grpc-js baseline, socket.io-client (websocket transport only) for socket.io.
// Every message text starts with the send time (performance.now() of this process), so latency is
// measured on one clock.
import http from "node:http";
import net from "node:net";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { io as ioClient } from "socket.io-client";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { fileDesc, serviceDesc } from "@bufbuild/protobuf/codegenv2";
import { file_google_protobuf_timestamp } from "@bufbuild/protobuf/wkt";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[loadgen] ${a.join(" ")}\n`);

/**
 * The value, which the code knows is there (a regex that matches a file the harness wrote).
 * @template T
 * @param {T | null | undefined} v
 * @returns {T}
 */
function must(v) {
  if (v === null || v === undefined) throw new Error("expected a value");
  return v;
}

/** The port a listening server is on. @param {{ address(): string | import("node:net").AddressInfo | null }} server */
function portOf(server) {
  const a = server.address();
  if (a === null || typeof a === "string") throw new Error("the server is not listening on a TCP port");
  return a.port;
}

// ---------------------------------------------------------------- schemas for the library clients

// edgechat's generated code is TypeScript, which Node 20 does not run: build the same descriptor
// from the serialized FileDescriptorProto embedded in it.
const pbSource = readFileSync(join(ROOT, "app/gen/chat/v1/chat_pb.ts"), "utf8");
const ChatService = serviceDesc(fileDesc(must(/fileDesc\("([^"]+)"/.exec(pbSource))[1], [file_google_protobuf_timestamp]), 0);
const grpcDef = protoLoader.loadSync("chat/v1/chat.proto", {
  includeDirs: [join(ROOT, "proto")],
  keepCase: true,
  longs: String,
  defaults: false,
  oneofs: true,
});
const GrpcChat = grpc.makeGenericClientConstructor(/** @type {grpc.ServiceDefinition} */ (grpcDef["chat.v1.ChatService"]), "ChatService");

// ---------------------------------------------------------------- measurement

const G = 1.02;
const LOG_G = Math.log(G);
/** Latency histogram in ms: buckets 2% wide from 10 µs. */
class Hist {
  constructor() {
    this.b = new Float64Array(1100);
    this.n = 0;
    this.max = 0;
  }
  add(ms) {
    const i = ms <= 0.01 ? 0 : Math.min(1099, Math.ceil(Math.log(ms / 0.01) / LOG_G));
    this.b[i]++;
    this.n++;
    if (ms > this.max) this.max = ms;
  }
  q(p) {
    if (this.n === 0) return null;
    const want = p * this.n;
    let c = 0;
    for (let i = 0; i < this.b.length; i++) {
      c += this.b[i];
      if (c >= want && c > 0) return Math.min(this.max, 0.01 * G ** i);
    }
    return this.max;
  }
}
const CDF_P = [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999];
const r3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000);

/** What the subscribers count: deliveries of messages sent since `from`, and those received in [t0, t1). */
const meter = { from: Infinity, t0: Infinity, t1: -Infinity, all: 0, inWindow: 0, hist: new Hist() };
let lastDataAt = 0;
function resetMeter(from, t0, t1) {
  Object.assign(meter, { from, t0, t1, all: 0, inWindow: 0, hist: new Hist() });
}
function delivered(ts, t) {
  if (ts < meter.from) return;
  meter.all++;
  if (t >= meter.t0 && t < meter.t1) {
    meter.inWindow++;
    meter.hist.add(t - ts);
  }
}

/** Parses the leading decimal number (the send time) of a message text at buf[i]. */
function parseTs(buf, i) {
  let v = 0;
  let c;
  while ((c = buf[i]) >= 48 && c <= 57) {
    v = v * 10 + (c - 48);
    i++;
  }
  if (buf[i] === 46) {
    i++;
    let f = 0.1;
    while ((c = buf[i]) >= 48 && c <= 57) {
      v += (c - 48) * f;
      f /= 10;
      i++;
    }
  }
  return v;
}
const PAD = " " + "x".repeat(63);
const text = () => now().toFixed(3) + PAD;

function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in seconds (CLK_TCK 100)
  } catch {
    return NaN;
  }
}
const rssKiB = (pid) => Number(must(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8")))[1]);
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** CPU of the server and of this process between two calls, as a fraction of one core. */
function cpuMeter(pid) {
  const t = now();
  const s = cpuTicks(pid);
  const l = selfCpu();
  return () => {
    const dt = (now() - t) / 1000;
    return { serverCpu: r3((cpuTicks(pid) - s) / dt), loadgenCpu: r3((selfCpu() - l) / dt) };
  };
}

async function waitQuiet(quietMs, capMs) {
  const end = now() + capMs;
  while (now() < end && now() - lastDataAt < quietMs) await sleep(Math.min(50, quietMs / 2));
}

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

// ---------------------------------------------------------------- protobuf, by hand (the subscriber's hot path)

function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
function str(field, s) {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(b.length)]), b]);
}
function grpcFrame(payload) {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}
const subscribeRequest = (rooms) => grpcFrame(Buffer.concat(rooms.map((r) => str(1, r))));
/** chat.v1.ChatRequest{join: JoinRoom{room}} per room, each its own message on the Chat stream. */
const chatJoins = (rooms) => Buffer.concat(rooms.map((r) => grpcFrame(str(1, str(1, r)))));
const sendRequest = (room, t) => grpcFrame(Buffer.concat([str(1, room), str(3, t)]));

let vpos = 0;
function readVarint(buf, p) {
  let v = 0;
  let shift = 0;
  let b;
  do {
    b = buf[p++];
    v += (b & 127) * 2 ** shift;
    shift += 7;
  } while (b & 128);
  vpos = p;
  return v;
}
/** Skips a field of wire type `wt` at p; returns the position after it. */
function skip(buf, p, wt) {
  if (wt === 0) return (readVarint(buf, p), vpos);
  if (wt === 2) return readVarint(buf, p) + vpos;
  if (wt === 1) return p + 8;
  if (wt === 5) return p + 4;
  throw new Error(`wire type ${wt}`);
}
/** One chat.v1.ChatEvent in buf[s, e): 1 ready, 2 message (text = field 5), 8 joined. */
function onEvent(sub, buf, s, e, t) {
  let p = s;
  while (p < e) {
    const tag = readVarint(buf, p);
    p = vpos;
    const f = tag >>> 3;
    if ((tag & 7) !== 2) {
      p = skip(buf, p, tag & 7);
      continue;
    }
    const len = readVarint(buf, p);
    p = vpos;
    if (f === 2) {
      // chat.v1.Message: find text (5)
      let q = p;
      const end = p + len;
      while (q < end) {
        const mt = readVarint(buf, q);
        q = vpos;
        if (mt === 0x2a) {
          readVarint(buf, q);
          delivered(parseTs(buf, vpos), t);
          break;
        }
        q = skip(buf, q, mt & 7);
      }
    } else if (f === 8) sub.onJoined();
    p += len;
  }
}

// ---------------------------------------------------------------- users: gRPC on a minimal HTTP/2 client

// node:http2 costs tens of µs per DATA frame on the client side, as much as a server spends on a
// delivery: at 50k deliveries/s the load generator would be the limit. This client does only what
// a gRPC subscriber needs: prior-knowledge h2c, request headers as HPACK literals (no dynamic table,
// no Huffman), big flow-control windows, SETTINGS/PING acks. It never decodes the server's header
// blocks: a Send succeeded when its response message arrived before the stream ended, as with gRPC
// an error is a trailers-only response or a reset.
const SUBSCRIBE = "/chat.v1.ChatService/Subscribe";
const SEND = "/chat.v1.ChatService/Send";
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const WINDOW = 1 << 24;

function h2frame(type, flags, stream, payload) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const hstr = (v) => {
  const b = Buffer.from(v);
  if (b.length > 126) throw new Error("header too long");
  return Buffer.concat([Buffer.from([b.length]), b]);
};
/** Literal header field without indexing: a static-table name (index < 31 + 15) or a new name. */
const hlit = (name, value) =>
  typeof name === "number"
    ? Buffer.concat([Buffer.from(name < 15 ? [name] : [15, name - 15]), hstr(value)])
    : Buffer.concat([Buffer.from([0]), hstr(name), hstr(value)]);
/** :method POST (static 3), :scheme http (6), :path (4), :authority (1), content-type (31), te, x-user. */
const requestHeaders = (path, authority, user, contentType = "application/grpc") =>
  Buffer.concat([Buffer.from([0x83, 0x86]), hlit(4, path), hlit(1, authority), hlit(31, contentType), hlit("te", "trailers"), hlit("x-user", user)]);

/**
 * The kinds of subscriber stream edgechat serves on HTTP/2, as a client opens them: the RPC, the
 * protocol's content type, the request, and whether the request side stays open (Chat).
 */
const STREAMS = {
  "grpc-subscribe": { path: SUBSCRIBE, type: "application/grpc", body: subscribeRequest, open: false },
  "grpc-chat": { path: "/chat.v1.ChatService/Chat", type: "application/grpc", body: chatJoins, open: true },
  "connect-subscribe": { path: SUBSCRIBE, type: "application/connect+proto", body: subscribeRequest, open: false },
  "grpc-web-subscribe": { path: SUBSCRIBE, type: "application/grpc-web+proto", body: subscribeRequest, open: false },
};
const windowUpdate = (stream, n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return h2frame(8, 0, stream, b);
};

/** One user: its own connection, with one Subscribe stream (if it has rooms) and its Sends. */
class GrpcUser {
  constructor(port, user, rooms, stream = "grpc-subscribe") {
    const kind = STREAMS[stream];
    if (!kind) throw new Error(`unknown stream kind ${stream}`);
    this.ended = false;
    this.need = rooms.length;
    this.next = 1;
    this.rest = null;
    this.msgRest = null;
    this.unacked = 0;
    this.sends = new Map();
    /** @type {Promise<void>} */
    this.joined = new Promise((resolve, reject) => ((this.resolveJoined = resolve), (this.rejectJoined = reject)));
    this.sendHeaders = requestHeaders(SEND, `127.0.0.1:${port}`, user);
    const s = (this.sock = net.connect(port, "127.0.0.1"));
    s.setNoDelay(true);
    s.on("error", (err) => this.fail(err));
    s.on("close", () => this.fail(new Error("connection closed")));
    s.on("data", (chunk) => this.onData(chunk));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(2, 0); // ENABLE_PUSH 0
    settings.writeUInt16BE(4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(WINDOW, 8);
    const out = [PREFACE, h2frame(4, 0, 0, settings), windowUpdate(0, (1 << 30) - 65535)];
    if (rooms.length > 0) {
      this.sub = this.next;
      this.next += 2;
      const body = kind.body(rooms);
      out.push(h2frame(1, 4, this.sub, requestHeaders(kind.path, `127.0.0.1:${port}`, user, kind.type)), h2frame(0, kind.open ? 0 : 1, this.sub, body));
    } else s.once("connect", () => this.resolveJoined());
    s.write(Buffer.concat(out));
  }
  onJoined() {
    if (--this.need === 0) this.resolveJoined();
  }
  fail(err) {
    if (this.ended) return;
    this.ended = true;
    this.rejectJoined(err);
    for (const w of this.sends.values()) w.reject(err);
    this.sends.clear();
    this.sock.destroy();
  }
  onData(chunk) {
    const t = (lastDataAt = now());
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let p = 0;
    while (buf.length - p >= 9) {
      const len = buf.readUIntBE(p, 3);
      if (buf.length - p < 9 + len) break;
      const type = buf[p + 3];
      const flags = buf[p + 4];
      const sid = buf.readUInt32BE(p + 5) & 0x7fffffff;
      let s = p + 9;
      let e = s + len;
      p = e;
      if (type === 0) {
        if (flags & 8) e -= buf[s++]; // PADDED
        this.unacked += len;
        if (sid === this.sub) this.onMessages(buf, s, e, t);
        else if (e > s) {
          const w = this.sends.get(sid);
          if (w) w.got = true;
        }
        if (flags & 1) this.endStream(sid);
      } else if (type === 1) {
        if (flags & 1) this.endStream(sid);
      } else if (type === 3) this.endStream(sid, true);
      else if (type === 4 && !(flags & 1)) this.sock.write(h2frame(4, 1, 0, Buffer.alloc(0)));
      else if (type === 6 && !(flags & 1)) this.sock.write(h2frame(6, 1, 0, buf.subarray(s, e)));
      else if (type === 7) this.fail(new Error("GOAWAY"));
    }
    if (p < buf.length) this.rest = buf.subarray(p);
    // Give back what was read: the connection's window and the Subscribe stream's.
    if (this.unacked > WINDOW / 4 && !this.ended) {
      this.sock.write(Buffer.concat([windowUpdate(0, this.unacked), ...(this.sub ? [windowUpdate(this.sub, this.unacked)] : [])]));
      this.unacked = 0;
    }
  }
  /** gRPC messages of the Subscribe stream, which may straddle DATA frames. */
  onMessages(buf, s, e, t) {
    if (this.msgRest) {
      buf = Buffer.concat([this.msgRest, buf.subarray(s, e)]);
      s = 0;
      e = buf.length;
      this.msgRest = null;
    }
    while (e - s >= 5) {
      const len = buf.readUInt32BE(s + 1);
      if (e - s < 5 + len) break;
      // Flags 0: an event; gRPC-Web's trailers (0x80) and Connect's end of stream (0x02) are not.
      if (buf[s] === 0) onEvent(this, buf, s + 5, s + 5 + len, t);
      s += 5 + len;
    }
    if (s < e) this.msgRest = Buffer.from(buf.subarray(s, e));
  }
  endStream(sid, reset = false) {
    if (sid === this.sub) return this.fail(new Error(reset ? "Subscribe reset" : "Subscribe ended"));
    const w = this.sends.get(sid);
    if (!w) return;
    this.sends.delete(sid);
    if (w.got && !reset) w.resolve();
    else w.reject(new Error("Send failed"));
  }
  /** Unary Send on this user's connection; resolves once the response message has arrived. */
  send(room, t) {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new Error("connection closed"));
      const sid = this.next;
      this.next += 2;
      this.sends.set(sid, { resolve, reject, got: false });
      this.sock.write(Buffer.concat([h2frame(1, 4, sid, this.sendHeaders), h2frame(0, 1, sid, sendRequest(room, t))]));
    });
  }
  close() {
    this.ended = true;
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------- users on a minimal websocket client

/**
 * A websocket client with frames parsed by hand, for the users that speak over one: the upgrade on
 * `path`, masked client frames (with a zero key), pings answered, and each text or binary message
 * handed to onMessage(buf, start, end, time). A user resolves `joined` once in all its rooms, and
 * keeps the sends waiting for their acknowledgement in `acks` (id -> done(err?)).
 */
class WsClient {
  constructor(port, path, headers, rooms) {
    this.ended = false;
    this.need = rooms.length;
    this.acks = new Map();
    this.nextAck = 0;
    this.upgraded = false;
    this.rest = null;
    /** @type {Promise<void>} */
    this.joined = new Promise((resolve, reject) => ((this.resolveJoined = resolve), (this.rejectJoined = reject)));
    const s = (this.sock = net.connect(port, "127.0.0.1"));
    s.setNoDelay(true);
    s.on("error", (err) => this.fail(err));
    s.on("close", () => this.fail(new Error("socket closed")));
    s.on("data", (chunk) => this.onData(chunk));
    s.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}` +
        `Sec-WebSocket-Key: ${Buffer.from(String(Math.random()).slice(2, 18).padEnd(16, "0")).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  }
  fail(err) {
    if (this.ended) return;
    this.ended = true;
    this.rejectJoined(err);
    for (const done of this.acks.values()) done(err);
    this.acks.clear();
    this.sock.destroy();
  }
  /** The upgrade was accepted. */
  onOpen() {}
  onData(chunk) {
    const t = (lastDataAt = now());
    let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = null;
    let p = 0;
    if (!this.upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return void (this.rest = buf);
      if (!buf.toString("latin1", 0, 12).startsWith("HTTP/1.1 101")) return this.fail(new Error(buf.toString("latin1", 0, end)));
      this.upgraded = true;
      p = end + 4;
      this.onOpen();
    }
    while (buf.length - p >= 2) {
      const op = buf[p] & 15;
      let len = buf[p + 1] & 127;
      let h = 2;
      if (len === 126) {
        if (buf.length - p < 4) break;
        len = buf.readUInt16BE(p + 2);
        h = 4;
      } else if (len === 127) {
        if (buf.length - p < 10) break;
        len = Number(buf.readBigUInt64BE(p + 2));
        h = 10;
      }
      if (buf.length - p < h + len) break;
      const s = p + h;
      p = s + len;
      if (op === 1 || op === 2) this.onMessage(buf, s, p, t);
      else if (op === 9) this.frame(10, buf.subarray(s, p));
      else if (op === 8) return this.fail(new Error("websocket closed by the server"));
    }
    if (p < buf.length) this.rest = buf.subarray(p);
  }
  /**
   * One text or binary frame from the server, its payload at buf[s, e), read at time t: each
   * protocol on top (socket.io, edgechat's /ws) says what it means.
   * @param {Buffer} buf @param {number} s @param {number} e @param {number} t
   */
  onMessage(buf, s, e, t) {
    throw new Error("a WsClient subclass reads its messages");
  }
  /** A client frame: masked (with a zero key, which leaves the payload as it is). */
  frame(op, payload) {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n, 0, 0, 0, 0]) : Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255, 0, 0, 0, 0]);
    this.sock.write(Buffer.concat([head, payload]));
  }
  /** Sends `text`, a message acknowledged as `id`; resolves once that ack arrives. */
  request(id, text) {
    return /** @type {Promise<void>} */ (
      new Promise((resolve, reject) => {
        if (this.ended) return reject(new Error("socket closed"));
        this.acks.set(id, (err) => (err ? reject(err) : resolve()));
        this.frame(1, Buffer.from(text));
      })
    );
  }
  /** Settles the send waiting for ack `id`. */
  acked(id, err) {
    const done = this.acks.get(id);
    this.acks.delete(id);
    done?.(err);
  }
  close() {
    this.ended = true;
    this.sock.destroy();
  }
}

/** One user: a websocket speaking Engine.IO 4 / socket.io 5 as socket.io-client does. */
class SioUser extends WsClient {
  constructor(port, user, rooms) {
    super(port, "/socket.io/?EIO=4&transport=websocket", "", rooms);
    this.hello = "40" + JSON.stringify({ user, rooms });
  }
  /** One Engine.IO packet in buf[s, e). */
  onMessage(buf, s, e, t) {
    const c0 = buf[s];
    if (c0 === 0x34 /* 4 message */) {
      const c1 = buf[s + 1];
      if (c1 === 0x32 /* 2 event */) {
        if (buf[s + 4] === 0x6d /* ["m */) {
          const i = buf.indexOf('"text":"', s + 14);
          if (i > 0 && i < e) delivered(parseTs(buf, i + 8), t);
        } else if (buf[s + 4] === 0x6a /* ["j */ && --this.need === 0) this.resolveJoined();
      } else if (c1 === 0x33 /* 3 ack */) {
        const body = buf.toString("latin1", s, e);
        this.acked(parseInt(buf.toString("latin1", s + 2, Math.min(e, s + 14)), 10), body.includes('"error"') ? new Error(body) : undefined);
      } else if (c1 === 0x30 /* 0 connect */ && this.need === 0) this.resolveJoined();
      else if (c1 === 0x34 /* 4 connect error */) this.fail(new Error(buf.toString("utf8", s, e)));
    } else if (c0 === 0x32 /* 2 ping */) this.frame(1, Buffer.from("3"));
    else if (c0 === 0x30 /* 0 open */) this.frame(1, Buffer.from(this.hello));
  }
  send(room, t) {
    const id = this.nextAck++;
    return this.request(id, `42${id}["send",${JSON.stringify({ room, text: t })}]`);
  }
}

/** One user of edgechat's /ws gateway: protobuf JSON text frames, one join per room. */
class WsUser extends WsClient {
  constructor(port, user, rooms) {
    super(port, "/ws", `x-user: ${user}\r\n`, rooms);
    this.rooms = rooms;
  }
  onOpen() {
    for (const room of this.rooms) this.frame(1, Buffer.from(JSON.stringify({ join: { room } })));
    if (this.need === 0) this.resolveJoined();
  }
  /** One ChatEvent in protobuf JSON: {"message":{...,"text":"<ts> ..."}}, {"joined":...}, {"ack":...}, {"error":...}. */
  onMessage(buf, s, e, t) {
    const c = buf[s + 2];
    if (c === 0x6d /* {"m */) {
      const i = buf.indexOf('"text":"', s);
      if (i > 0 && i < e) delivered(parseTs(buf, i + 8), t);
    } else if (c === 0x6a /* {"j */) {
      if (--this.need === 0) this.resolveJoined();
    } else if (c === 0x61 /* {"a */ || c === 0x65 /* {"e */) {
      const i = buf.indexOf('"clientMsgId":"', s);
      if (i < 0 || i >= e) return;
      const id = buf.toString("latin1", i + 15, buf.indexOf('"', i + 15));
      this.acked(id, c === 0x61 ? undefined : new Error(buf.toString("utf8", s, e)));
    }
  }
  /** Sends on the session; resolves once its ack arrives. */
  send(room, t) {
    const id = `w${this.nextAck++}`;
    return this.request(id, JSON.stringify({ send: { room, text: t, clientMsgId: id } }));
  }
}

/** Streams a capacity call left open (keep), until release. */
const held = [];

/** A subscriber of a contender; edgechat's in the stream kind asked for (its gRPC Subscribe by default). */
const makeSub = (kind, port, user, rooms, stream = "grpc-subscribe") =>
  kind === "socket.io" ? new SioUser(port, user, rooms) : stream === "ws" ? new WsUser(port, user, rooms) : new GrpcUser(port, user, rooms, stream);

/** Opens subscribers `batch` at a time; resolves once every one has joined its rooms. */
async function openSubs(kind, port, specs, batch = 100, capMs = 120_000) {
  const subs = [];
  const end = now() + capMs;
  try {
    for (let i = 0; i < specs.length; i += batch) {
      const [base, stream] = kind.split(":");
      const part = specs.slice(i, i + batch).map(([user, rooms]) => makeSub(base, port, user, rooms, stream));
      subs.push(...part);
      await withTimeout(Promise.all(part.map((s) => s.joined)), Math.max(1000, end - now()), `opening ${specs.length} subscribers`);
    }
  } catch (err) {
    for (const s of subs) s.close();
    throw err;
  }
  return subs;
}

// ---------------------------------------------------------------- senders: each server's own client library

async function makeSender(contender, port, user, library = true) {
  // Senders are the contender's own, whatever stream kind its subscribers use ("edgechat:ws").
  const kind = contender.split(":")[0];
  if (!library) {
    const sub = makeSub(kind, port, user, []);
    await withTimeout(sub.joined, 10_000, "sender connect");
    return sub;
  }
  if (kind === "edgechat" || kind === "bun-h2-floor") {
    const manager = new Http2SessionManager(`http://127.0.0.1:${port}`);
    /** @type {any} the service is built at run time from the descriptor, so its methods are not known to the checker */
    const client = createClient(ChatService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, sessionManager: manager }));
    const headers = { "x-user": user };
    return {
      send: (room, t) => client.send({ target: { case: "room", value: room }, text: t }, { headers }),
      close: () => manager.abort(),
    };
  }
  if (kind === "grpc-js") {
    // A channel of its own (no shared subchannel pool), so each sender is one connection, as
    // edgechat's senders and real users are.
    const client = new GrpcChat(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    const md = new grpc.Metadata();
    md.set("x-user", user);
    return {
      send: (room, t) => new Promise((resolve, reject) => client.Send({ room, text: t }, md, (err, res) => (err ? reject(err) : resolve(res)))),
      close: () => client.close(),
    };
  }
  const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ["websocket"], auth: { user, rooms: [] }, forceNew: true, reconnection: false });
  await withTimeout(
    new Promise((resolve, reject) => (socket.once("connect", () => resolve(undefined)), socket.once("connect_error", reject))),
    10_000,
    "socket.io connect",
  );
  return {
    async send(room, t) {
      const res = await socket.timeout(30_000).emitWithAck("send", { room, text: t });
      if (res?.error) throw new Error(res.error);
      return res;
    },
    close: () => socket.close(),
  };
}

// ---------------------------------------------------------------- load shapes

/**
 * K senders, each sending the next message as soon as the previous one is acked, until `until`;
 * but none while more than `backlog` messages per subscriber are sent and not yet delivered. An ack
 * says a message is accepted, not delivered (the baselines ack once the writes are queued, edgechat
 * once the message is durable), so senders that only wait for acks would grow every server's
 * queues without bound, and cut subscribers at the 1,000-event limit, instead of measuring how
 * fast it delivers.
 */
async function closedLoop(senders, room, until, subscribers, backlog) {
  let sent = 0;
  let issued = 0;
  let errors = 0;
  await Promise.all(
    senders.map(async (s) => {
      while (now() < until && errors < 100) {
        const live = subscribers();
        if ((issued - errors) * live - meter.all > backlog * live) {
          await sleep(1);
          continue;
        }
        issued++;
        try {
          await s.send(room, text());
          sent++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { sent, errors };
}

/**
 * Open loop at `rate` messages/s until `until`: `pick(i)` returns who sends message i and where.
 * At most `maxInFlight` unacked sends; a send that does not fit is skipped and counted.
 */
async function openLoop(rate, until, pick, maxInFlight) {
  const start = now();
  let issued = 0;
  let inFlight = 0;
  let errors = 0;
  let skipped = 0;
  while (now() < until) {
    const due = Math.floor(((now() - start) * rate) / 1000);
    while (issued < due) {
      const [who, room] = pick(issued++);
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      inFlight++;
      who.send(room, text()).then(
        () => inFlight--,
        () => (inFlight--, errors++),
      );
    }
    await sleep(2);
  }
  const drainEnd = now() + 10_000;
  while (inFlight > 0 && now() < drainEnd) await sleep(10);
  return { sent: issued - skipped, errors, skipped };
}

/** Runs `load` with the meter armed: warm-up, then a measured window; then waits for deliveries to stop. */
async function phase(pid, { warmupMs, durationMs }, expectedPerMessage, load) {
  const start = now();
  const t0 = start + warmupMs;
  const t1 = t0 + durationMs;
  resetMeter(start, t0, t1);
  let cpu;
  let sentAt0 = 0;
  const counter = { sent: 0 };
  const armed = sleep(warmupMs).then(() => {
    cpu = cpuMeter(pid);
    sentAt0 = counter.sent;
  });
  /** @type {{ serverCpu: number, loadgenCpu: number } | undefined} */
  let usage;
  const stopped = armed
    .then(() => sleep(durationMs))
    .then(() => {
      usage = cpu();
      return counter.sent - sentAt0;
    });
  const outcome = await load(t1, counter);
  const sentInWindow = await stopped;
  await waitQuiet(300, 15_000);
  const h = meter.hist;
  const expected = outcome.sent * expectedPerMessage();
  return {
    sentPerSec: Math.round(sentInWindow / (durationMs / 1000)),
    deliveriesPerSec: Math.round(meter.inWindow / (durationMs / 1000)),
    p50: r3(h.q(0.5)),
    p90: r3(h.q(0.9)),
    p99: r3(h.q(0.99)),
    max: r3(h.max),
    cdf: CDF_P.map((p) => r3(h.q(p))),
    ...usage,
    sent: outcome.sent,
    sendErrors: outcome.errors,
    skipped: outcome.skipped ?? 0,
    deliveries: meter.all,
    lost: Math.max(0, expected - meter.all),
  };
}

const counted = (counter, p) => p.then((r) => (counter.sent++, r));

// ---------------------------------------------------------------- scenarios

const ops = {
  /** Fan-out: S subscribers in one room; K senders as fast as acks allow, then at a fixed rate. */
  async fanout({ kind, port, pid, subscribers, senders: k, warmupMs, durationMs, rate, backlog = 100, librarySenders = false }) {
    const room = "fanout";
    const t = now();
    const subs = await openSubs(
      kind,
      port,
      Array.from({ length: subscribers }, (_, i) => [`sub${i}`, [room]]),
    );
    // edgechat tells every member of a room about each join: let that settle before measuring.
    await waitQuiet(250, 30_000);
    const setupMs = Math.round(now() - t);
    const senders = await Promise.all(Array.from({ length: k }, (_, i) => makeSender(kind, port, `sender${i}`, librarySenders)));
    // Subscribers still connected, recounted at most every 50 ms (the gate asks on every send).
    let liveAt = 0;
    let liveN = subscribers;
    const live = () => (now() - liveAt > 50 ? ((liveAt = now()), (liveN = subs.filter((s) => !s.ended).length)) : liveN);
    try {
      const result = { subscribers, senders: k, backlog, setupMs };
      result.saturation = await phase(pid, { warmupMs, durationMs }, live, (until, counter) =>
        closedLoop(
          senders.map((s) => ({ send: (r, x) => counted(counter, s.send(r, x)) })),
          room,
          until,
          live,
          backlog,
        ),
      );
      if (rate > 0) {
        result.fixed = await phase(pid, { warmupMs, durationMs }, live, (until, counter) =>
          openLoop(rate, until, (i) => [{ send: (r, x) => counted(counter, senders[i % k].send(r, x)) }, room], 64 * k),
        );
        result.fixed.offeredPerSec = rate;
        result.fixed.offeredDeliveriesPerSec = rate * subscribers;
      }
      result.subscribersEnded = subs.filter((s) => s.ended).length;
      result.serverRssKiB = rssKiB(pid);
      return result;
    } finally {
      for (const s of senders) s.close();
      for (const s of subs) s.close();
    }
  },

  /** Many small rooms: `rooms` rooms of `perRoom` users, each user on its own connection, chatting at a steady total rate. */
  async rooms({ kind, port, pid, rooms, perRoom, rate, warmupMs, durationMs }) {
    const specs = [];
    for (let r = 0; r < rooms; r++) for (let j = 0; j < perRoom; j++) specs.push([`u${r}_${j}`, [`room${r}`]]);
    const t = now();
    const subs = await openSubs(kind, port, specs, 200);
    await waitQuiet(250, 30_000);
    const setupMs = Math.round(now() - t);
    // A fixed shuffle, so that consecutive messages go to different rooms.
    const order = specs.map((_, i) => i);
    let seed = 7;
    for (let i = order.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    try {
      const result = { rooms, perRoom, users: specs.length, setupMs, offeredPerSec: rate };
      Object.assign(
        result,
        await phase(
          pid,
          { warmupMs, durationMs },
          () => perRoom,
          (until, counter) =>
            openLoop(
              rate,
              until,
              (i) => {
                const u = order[i % order.length];
                return [{ send: (r, x) => counted(counter, subs[u].send(r, x)) }, specs[u][1][0]];
              },
              5000,
            ),
        ),
      );
      result.subscribersEnded = subs.filter((s) => s.ended).length;
      result.serverRssKiB = rssKiB(pid);
      return result;
    } finally {
      for (const s of subs) s.close();
    }
  },

  /** Idle sessions: open subscriptions in steps, doing nothing; the server's RSS at each step. */
  async idle({ kind, port, pid, steps, settleMs, connectionsOnly = false }) {
    const subs = [];
    const points = [];
    try {
      await sleep(settleMs);
      points.push({ streams: 0, rssKiB: rssKiB(pid), loadgenRssKiB: rssKiB(process.pid) });
      for (const n of steps) {
        const specs = [];
        // connectionsOnly (a diagnostic): connections that open no stream, to split a stream's cost from its connection's.
        for (let i = subs.length; i < n; i++) specs.push([`idle${i}`, connectionsOnly ? [] : [`idle${i % 100}`]]);
        subs.push(...(await openSubs(kind, port, specs, 200)));
        await waitQuiet(250, 30_000);
        await sleep(settleMs);
        points.push({ streams: n, rssKiB: rssKiB(pid), loadgenRssKiB: rssKiB(process.pid) });
      }
      const last = points[points.length - 1];
      return {
        points,
        perStreamKiB: r3((last.rssKiB - points[0].rssKiB) / last.streams),
        baseRssKiB: points[0].rssKiB,
        ended: subs.filter((s) => s.ended).length,
      };
    } finally {
      for (const s of subs) s.close();
    }
  },

  /**
   * Capacity: `n` subscribers, one connection and one stream each, their kinds taken in turn from
   * `kinds` ("grpc-subscribe", "grpc-chat", "connect-subscribe", "grpc-web-subscribe", "ws"),
   * `perRoom` to a room; then one message to every room. Resolves with how many streams opened and
   * how many of them got the message (test/e2e/capacity.test.ts).
   */
  async capacity({ port, n, perRoom, kinds, batch = 200, waitMs = 60_000, keep = false }) {
    const subs = [];
    const rooms = Math.ceil(n / perRoom);
    let kept = false;
    try {
      for (let i = 0; i < n; i += batch) {
        const part = [];
        for (let j = i; j < Math.min(n, i + batch); j++)
          part.push(makeSub("edgechat", port, `cap-u${j}`, [`cap-r${Math.floor(j / perRoom)}`], kinds[j % kinds.length]));
        subs.push(...part);
        await withTimeout(Promise.all(part.map((s) => s.joined)), 60_000, `opening subscribers ${i} to ${i + part.length}`);
      }
      const opened = subs.filter((s) => !s.ended).length;
      const start = now();
      resetMeter(start, start, Infinity);
      const sender = await makeSender("edgechat", port, "cap-sender", false);
      for (let r = 0; r < rooms; r++) await sender.send(`cap-r${r}`, text());
      const end = now() + waitMs;
      while (meter.all < n && now() < end) await sleep(50);
      sender.close();
      // keep: the streams stay open until "release", so that the caller can measure the server with them.
      if (keep) kept = (held.push(...subs), true);
      return { opened, delivered: meter.all, expected: n, ended: subs.filter((s) => s.ended).length, ms: Math.round(now() - start) };
    } finally {
      if (!kept) for (const s of subs) s.close();
    }
  },

  /** Closes the streams a capacity call kept open. */
  async release() {
    for (const s of held.splice(0)) s.close();
    return {};
  },

  /** Cold start: spawn to the first successful Send, `n` times. */
  async cold({ kind, cmd, args, env, cwd, dataDirEnv, n }) {
    const samples = [];
    const listen = [];
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      const dir = dataDirEnv ? mkdtempSync(join(tmpdir(), "edgechat-bench-cold-")) : undefined;
      const t0 = now();
      const child = spawn(cmd, args, { cwd, env: { ...env, PORT: String(port), ...(dir ? { [dataDirEnv]: dir } : {}) }, stdio: "ignore" });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        await waitPort(port, t0 + 20_000, exited);
        listen.push(now() - t0);
        const end = t0 + 20_000;
        for (;;) {
          let sender;
          try {
            sender = await makeSender(kind, port, "cold");
            await withTimeout(sender.send("cold", text()), 5000, "first Send");
            break;
          } catch (err) {
            if (now() > end) throw err;
            await sleep(5);
          } finally {
            sender?.close();
          }
        }
        samples.push(now() - t0);
      } finally {
        child.kill("SIGKILL");
        await exited;
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }
    const med = (a) => r3([...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]);
    return { medianMs: med(samples), listenMedianMs: med(listen), samplesMs: samples.map(r3) };
  },

  /** A metrics target exposing about `series` series shaped like edgechat's own. */
  async targetStart({ series }) {
    const body = syntheticExposition(series);
    target = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(body);
    });
    await new Promise((resolve) => target.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${portOf(target)}/metrics`, series: body.split("\n").filter((l) => l && l[0] !== "#").length, bytes: body.length };
  },
  async targetStop() {
    await new Promise((resolve) => target?.close(resolve));
    target = undefined;
    return {};
  },
  /** Times `n` scrapes of the sidecar, one after the other. */
  async scrape({ url, pid, n }) {
    const samples = [];
    let seriesOut = 0;
    const cpu = cpuMeter(pid);
    const cpu0 = cpuTicks(pid);
    for (let i = 0; i < n; i++) {
      const t = now();
      const body = await httpGet(url);
      samples.push(now() - t);
      seriesOut = body.split("\n").filter((l) => l && l[0] !== "#").length;
    }
    cpu();
    const warm = samples.slice(1).sort((a, b) => a - b);
    return {
      firstMs: r3(samples[0]),
      medianMs: r3(warm.length ? warm[Math.floor(warm.length / 2)] : samples[0]),
      samplesMs: samples.map(r3),
      seriesOut,
      sidecarCpuMsPerScrape: r3(((cpuTicks(pid) - cpu0) * 1000) / n),
    };
  },
};

let target;

function httpGet(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
      })
      .on("error", reject);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = portOf(srv);
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on `port`; probes every 2 ms until `deadline`. */
async function waitPort(port, deadline, exited) {
  let gone = false;
  exited.then(() => (gone = true));
  while (!gone && now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(2);
  }
  throw new Error(gone ? "server exited before listening" : `port ${port} not open in time`);
}

/** Prometheus text shaped like edgechat's /metrics (runtime, process, chat, go-grpc-prometheus), padded with more gRPC methods to `want` series. */
function syntheticExposition(want) {
  const lines = [];
  let n = 0;
  const family = (name, type, samples) => {
    lines.push(`# HELP ${name} Synthetic ${type} for the sidecar benchmark.`, `# TYPE ${name} ${type}`);
    for (const [suffix, labels, v] of samples) {
      lines.push(`${name}${suffix}${labels ? `{${labels}}` : ""} ${v}`);
      n++;
    }
  };
  const gauges =
    "bun_gc_last_time_seconds bun_jsc_heap_size_bytes bun_jsc_heap_capacity_bytes bun_jsc_extra_memory_bytes bun_jsc_objects bun_jsc_protected_objects bun_array_buffers_bytes bun_external_memory_bytes bun_mimalloc_in_use_bytes bun_mimalloc_committed_bytes bun_mimalloc_committed_peak_bytes bun_mimalloc_page_committed_bytes bun_mimalloc_page_committed_peak_bytes bun_threads bun_stack_bytes bun_page_tables_bytes bun_rss_anon_bytes bun_rss_file_bytes bun_event_loop_delay_seconds process_start_time_seconds process_resident_memory_bytes process_virtual_memory_bytes process_open_fds process_max_fds edgechat_rooms edgechat_tasks edgechat_draining";
  for (const g of gauges.split(" ")) family(g, "gauge", [["", "", 1000 + g.length * 7919]]);
  for (const c of "bun_gc_collections_total bun_mimalloc_allocations_total bun_mimalloc_frees_total bun_mimalloc_allocated_bytes_total process_cpu_seconds_total".split(
    " ",
  ))
    family(c, "counter", [["", "", 123456]]);
  family("bun_gc_pause_seconds", "summary", [
    ...["0", "0.25", "0.5", "0.75", "1"].map((q, i) => ["", `quantile="${q}"`, 0.001 * (i + 1)]),
    ["_sum", "", 0.5],
    ["_count", "", 40],
  ]);
  const protocols = ["grpc", "grpc_web", "connect", "ws", "http"];
  for (const name of [
    "edgechat_sessions_open",
    "edgechat_messages_accepted_total",
    "edgechat_messages_delivered_total",
    "edgechat_slow_consumers_total",
    "edgechat_rate_limited_total",
  ]) {
    family(
      name,
      name.endsWith("_total") ? "counter" : "gauge",
      protocols.map((p, i) => ["", `protocol="${p}"`, i * 17]),
    );
  }
  const buckets = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
  const histogram = (labels) => [...buckets.map((le, i) => ["_bucket", `le="${le}",${labels}`, i * 3]), ["_sum", labels, 1.5], ["_count", labels, 33]];
  family(
    "edgechat_delivery_latency_seconds",
    "histogram",
    protocols.flatMap((p) => histogram(`protocol="${p}"`)),
  );
  const codes =
    "OK Canceled Unknown InvalidArgument DeadlineExceeded NotFound AlreadyExists PermissionDenied ResourceExhausted FailedPrecondition Aborted OutOfRange Unimplemented Internal Unavailable DataLoss Unauthenticated".split(
      " ",
    );
  const perMethod = 3 + codes.length + buckets.length + 2;
  const methods = [];
  for (let i = 0; n + methods.length * perMethod < want; i++)
    methods.push([`chat.v${1 + (i % 3)}.Service${Math.floor(i / 6)}`, `Method${i}`, i % 4 === 0 ? "server_stream" : "unary"]);
  /** @param {string[]} method [service, method, type] */
  const ml = ([svc, m, type]) => `grpc_type="${type}",grpc_service="${svc}",grpc_method="${m}"`;
  for (const name of ["grpc_server_started_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total"])
    family(
      name,
      "counter",
      methods.map((m, i) => ["", ml(m), i]),
    );
  family(
    "grpc_server_handled_total",
    "counter",
    methods.flatMap((m) => codes.map((c, i) => ["", `${ml(m)},grpc_code="${c}"`, i])),
  );
  family(
    "grpc_server_handling_seconds",
    "histogram",
    methods.flatMap((m) => histogram(ml(m))),
  );
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------- the command loop

const rl = createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  const { id, op, args } = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      if (!ops[op]) throw new Error(`unknown op ${op}`);
      const result = await ops[op](args ?? {});
      process.stdout.write(JSON.stringify({ id, result }) + "\n");
    } catch (err) {
      const e = /** @type {Error} */ (err);
      log(`${op} failed: ${e?.stack ?? e}`);
      process.stdout.write(JSON.stringify({ id, error: String(e?.message ?? e) }) + "\n");
    }
  });
});
rl.on("close", () => queue.then(() => process.exit(0)));
// A client socket's late error must not end the run.
process.on("uncaughtException", (err) => log(`uncaught: ${err?.stack ?? err}`));
process.on("unhandledRejection", (err) => log(`unhandled: ${/** @type {Error} */ (err)?.stack ?? err}`));
