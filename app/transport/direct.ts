// Every stream, on every protocol and HTTP version: Subscribe, Chat and the old API's ChatStream
// in gRPC, gRPC-Web and the Connect streaming protocol (binary or JSON, plain or compressed), on
// HTTP/2 streams and HTTP/1.1 requests (http1-stream.ts); and Send in the enveloped protocols
// (gRPC, gRPC-Web) on HTTP/2. They are where a chat server spends its time and memory: a Send per
// message, and one long stream per client, fed every event of its rooms. Through Connect each
// call built Node-style request and response objects and a chain of async generators, and each
// event passed that chain per subscriber (serialize, envelope, write and wait) and left as its
// own HTTP/2 frame; an idle stream held about 30 KiB of heap (measured). Here an event is encoded
// once per codec for all streams (event-frames.ts), what a stream has queued in one turn of the
// event loop leaves in one write, and an open call holds only its session and its stream.
//
// What the protocols do differently (content types, deadline header, where the status goes) is in
// wire-formats.ts; the rules they share (envelope flags, grpc-message, timeouts) in wire-rules.ts,
// which the Connect path applies to the unary calls it serves; compressed requests are
// decompressed by connect-node's own algorithms (request-compression.ts), and responses are not
// compressed (each event's frames are shared, and the protocols let a server answer uncompressed).
// Everything else (the other unary calls, health, reflection) goes through Connect (rpc.ts).
import type http from "node:http";
import type http2 from "node:http2";
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ChatRequestSchema, SubscribeRequestSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { ROOM_WRITES, type RoomWrite } from "./services/room-writes.ts";
import { ChatMessageSchema } from "../gen/chat/chat_pb.ts";
import { converse, identify, translate } from "./services/legacy-conversation.ts";
import { forLegacyClient } from "../core/advice.ts";
import type { HeaderSource, Identity } from "../core/auth.ts";
import type { ChatCore } from "../core/chat.ts";
import type { Session, SessionSink } from "../core/session.ts";
import { asConnectError } from "../core/events.ts";
import { goCode, type CallMetrics } from "../metrics/grpc.ts";
import { requestDecodeError } from "./decode-errors.ts";
import { concat, envelope, framesOf } from "./event-frames.ts";
import { flushSoon } from "./flush-soon.ts";
import { Http1Stream } from "./http1-stream.ts";
import { wireOf, type Wire } from "./wire-formats.ts";
import { COMPRESSED, requestFlagsError } from "./wire-rules.ts";
import { decompress, decompresses } from "./request-compression.ts";
import { drainRefusal } from "../core/advice.ts";
import { noUserError } from "../core/auth.ts";
import { STUCK_GRACE_MS } from "../core/limits.ts";

const SERVICE = "chat.v1.ChatService";
const LEGACY_SERVICE = "chat.ChatService";
const ENHANCE_YOUR_CALM = 0xb;
const ignore = () => {};

export interface GrpcDirectOptions {
  core: ChatCore;
  /** The caller from the request headers (dev mode: x-user), with its token's expiry; throws Unauthenticated. */
  authenticate(headers: HeaderSource, protocol: string): Promise<Identity | undefined>;
  isDraining(): boolean;
  /** Starts counting a call of `service`'s `method` (protobuf-es's method kind: "server_streaming"). */
  metrics(service: string, method: string, kind: string): CallMetrics;
  maxRequestBytes: number;
  onError(err: unknown): void;
}

/**
 * Serves a new HTTP/2 stream if it is a call this path takes; returns false, having touched
 * nothing, for any other stream.
 */
export function takeDirectStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): boolean {
  return take(headers, () => stream, opts, false);
}

/**
 * Serves an HTTP/1.1 request if it is a stream this path takes (gRPC-Web and Connect streams are
 * what browsers send), through the same code as on HTTP/2 (http1-stream.ts); returns false,
 * having touched nothing, for any other request. Unary calls stay on the Connect path, where they
 * keep their connection alive.
 */
export function takeHttp1Stream(req: http.IncomingMessage, res: http.ServerResponse, opts: GrpcDirectOptions): boolean {
  if (req.method !== "POST" || !STREAMS.has(req.url ?? "")) return false;
  return take({ ...req.headers, ":method": req.method, ":path": req.url }, () => new Http1Stream(req, res).asStream(), opts, true);
}

const STREAMS = new Set([`/${SERVICE}/Subscribe`, `/${SERVICE}/Chat`, `/${LEGACY_SERVICE}/ChatStream`]);

function take(headers: http2.IncomingHttpHeaders, stream: () => http2.ServerHttp2Stream, opts: GrpcDirectOptions, http1: boolean): boolean {
  if (headers[":method"] !== "POST") return false;
  const wire = wireOf(headers["content-type"]);
  if (!wire) return false;
  const encoding = headers[wire.encodingHeader];
  const compression = encoding === undefined || encoding === "identity" ? undefined : encoding;
  if (compression !== undefined && (typeof compression !== "string" || !decompresses(compression))) return false;
  const path = headers[":path"];
  const call = (service: string, method: string, kind: string) => new DirectCall(stream(), wire, compression, opts.metrics(service, method, kind));
  if (path === `/${SERVICE}/Subscribe`) void serveSubscribe(call(SERVICE, "Subscribe", "server_streaming"), headers, opts);
  else if (path === `/${SERVICE}/Chat`) void serveChat(call(SERVICE, "Chat", "bidi_streaming"), headers, opts);
  else if (path && UNARY.has(path) && wire.name !== "connect" && !http1) {
    const m = UNARY.get(path)!;
    void serveUnary(call(SERVICE, m.name, "unary"), headers, opts, m);
  } else if (path === `/${LEGACY_SERVICE}/ChatStream`) void serveLegacyChat(call(LEGACY_SERVICE, "ChatStream", "bidi_streaming"), headers, opts);
  else return false;
  return true;
}

/** What every call does first: drain, deadline, auth; returns the caller (if any: see serveLegacyChat). */
async function authenticated(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): Promise<Identity | undefined> {
  if (opts.isDraining()) throw drainRefusal();
  // The deadline counts from the call's start, whatever it waits for.
  const deadlineMs = call.wire.timeoutMs((name) => headers[name]);
  if (deadlineMs !== undefined) call.failAfter(deadlineMs);
  return opts.authenticate(new H2Headers(headers), call.wire.name);
}

/** authenticated(), for the calls that need a user from the headers. */
async function begin(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): Promise<Identity> {
  const who = await authenticated(call, headers, opts);
  if (!who) throw noUserError();
  return who;
}

/** begin(), then the call's one request message. */
async function accept<T extends DescMessage>(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions, schema: T) {
  const who = await begin(call, headers, opts);
  const framed = await readOneMessage(call.h2, opts.maxRequestBytes, call);
  call.metrics.received();
  return { who, req: decode(call.wire, schema, await payloadOf(framed, call, opts)) };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A framed request message's payload, decompressed if its flags say it is compressed. */
function payloadOf(framed: Uint8Array, call: DirectCall, opts: GrpcDirectOptions): Uint8Array | Promise<Uint8Array> {
  const body = framed.subarray(5);
  return framed[0] & COMPRESSED && call.compression ? decompress(call.compression, body, opts.maxRequestBytes) : body;
}

function decode<T extends DescMessage>(wire: Wire, schema: T, body: Uint8Array): MessageShape<T> {
  try {
    // Unknown JSON fields are ignored, as connect-es does on the Connect path.
    return wire.codec === "proto" ? fromBinary(schema, body) : fromJsonString(schema, utf8.decode(body), { ignoreUnknownFields: true });
  } catch (err) {
    throw requestDecodeError((err as Error).message);
  }
}

/**
 * A Chat stream: the session's events go out as on Subscribe, its requests are read as they come
 * and handled one at a time, in order, so that acks keep the send order (ChatRequests). The
 * client's half-close ends the stream with OK once what is queued is written.
 */
async function serveChat(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): Promise<void> {
  try {
    const who = await begin(call, headers, opts);
    if (call.gone || call.finished) return;
    const session = await opts.core.open(who.user, call.wire.name, who.expiresAtMs, who.admin === true);
    if (call.gone || call.finished) return void opts.core.close(session);
    call.stream(opts.core, session);
    new ChatRequests(call, session, opts);
  } catch (err) {
    failCall(call, err, opts);
  }
}

/**
 * A Chat stream's requests, parsed as they arrive and handled in order. The stream is paused while
 * requests wait, so a client that sends faster than they are handled is slowed by flow control.
 * Callbacks on an object rather than an async loop: an idle Chat stream holds this object only,
 * not a suspended function and a generator with their closures (about 2 KiB each, measured).
 */
class ChatRequests {
  private pending: Buffer = EMPTY;
  private readonly ready: Uint8Array[] = [];
  private busy = false;
  private ended = false;

  constructor(
    private readonly call: DirectCall,
    private readonly session: Session,
    private readonly opts: GrpcDirectOptions,
  ) {
    chatRequests.set(call.h2, this);
    call.h2.on("data", onChatData);
    call.h2.on("end", onChatEnd);
  }

  data(chunk: Buffer): void {
    try {
      this.pending = splitMessages(this.pending, chunk, this.ready, this.opts.maxRequestBytes, this.call);
    } catch (err) {
      return this.fail(err);
    }
    if (this.ready.length > 0) {
      this.call.h2.pause();
      void this.handle();
    }
  }

  end(): void {
    this.ended = true;
    void this.handle();
  }

  private async handle(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let framed = this.ready.shift(); framed; framed = this.ready.shift()) {
        this.call.metrics.received();
        if (this.session.closed) return;
        const body = await payloadOf(framed, this.call, this.opts);
        if (this.session.closed) return;
        await this.opts.core.handle(this.session, decode(this.call.wire, ChatRequestSchema, body));
      }
      if (this.ended) {
        if (this.pending.length > 0) throw cutShort();
        return this.session.end();
      }
      this.call.h2.resume();
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
    }
  }

  private fail(err: unknown): void {
    this.call.h2.off("data", onChatData);
    const e = asConnectError(err);
    if (e.code === Code.Internal) this.opts.onError(err);
    void this.opts.core.close(this.session, e);
  }
}

const EMPTY = Buffer.alloc(0);
const chatRequests = new WeakMap<http2.ServerHttp2Stream, ChatRequests>();
function onChatData(this: http2.ServerHttp2Stream, chunk: Buffer) {
  chatRequests.get(this)?.data(chunk);
}
function onChatEnd(this: http2.ServerHttp2Stream) {
  chatRequests.get(this)?.end();
}

/** The unary calls served here, by path (the others take the Connect path). */
const UNARY = new Map(Object.values(ROOM_WRITES).map((w) => [`/${SERVICE}/${w.name}`, w as unknown as RoomWrite<DescMessage, DescMessage>]));

async function serveUnary(
  call: DirectCall,
  headers: http2.IncomingHttpHeaders,
  opts: GrpcDirectOptions,
  m: RoomWrite<DescMessage, DescMessage>,
): Promise<void> {
  try {
    const { who, req } = await accept(call, headers, opts, m.input);
    const res = create(m.output, await m.serve(opts.core, { user: who.user, admin: who.admin === true, protocol: call.wire.name }, req));
    call.reply(call.wire.codec === "proto" ? toBinary(m.output, res) : new TextEncoder().encode(toJsonString(m.output, res)));
  } catch (err) {
    failCall(call, err, opts);
  }
}

async function serveSubscribe(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): Promise<void> {
  try {
    const { who, req } = await accept(call, headers, opts, SubscribeRequestSchema);
    if (call.gone || call.finished) return;
    const session = await opts.core.subscribe(who.user, call.wire.name, req.rooms, req.sinceSeq, who.expiresAtMs);
    // Canceled, or past its deadline, while joining.
    if (call.gone || call.finished) return void opts.core.close(session);
    call.stream(opts.core, session);
  } catch (err) {
    failCall(call, err, opts);
  }
}

/**
 * The old API's ChatStream (services/legacy-conversation.ts has its rules, shared with the Connect path):
 * the first message may name the user, each event is translated for this user, and an end that
 * tells v1 clients to resume with since_seq tells old ones what they can do instead.
 */
async function serveLegacyChat(call: DirectCall, headers: http2.IncomingHttpHeaders, opts: GrpcDirectOptions): Promise<void> {
  let session: Session | undefined;
  try {
    const signedIn = await authenticated(call, headers, opts);
    const messages = readMessages(call.h2, opts.maxRequestBytes, call);
    const first = await messages.next();
    if (first.done) return call.fail(undefined);
    call.metrics.received();
    const firstMessage = decode(call.wire, ChatMessageSchema, await payloadOf(first.value, call, opts));
    const user = identify(firstMessage, signedIn?.user);
    if (call.gone || call.finished) return;
    session = await opts.core.open(user, call.wire.name, signedIn?.expiresAtMs);
    if (call.gone || call.finished) return void opts.core.close(session);
    call.stream(opts.core, session, legacyView(user, call.wire.codec));
    const wire = call.wire;
    await converse(
      opts.core,
      session,
      firstMessage,
      (async function* () {
        for await (const framed of messages) {
          call.metrics.received();
          yield decode(wire, ChatMessageSchema, await payloadOf(framed, call, opts));
        }
      })(),
    );
  } catch (err) {
    if (!session) return failCall(call, forLegacyClient(asConnectError(err)), opts);
    await opts.core.close(session, asConnectError(err));
  }
}

/** How a session looks to an old client: its events translated, one encoding each (per user, so not shared). */
function legacyView(user: string, codec: Wire["codec"]): SessionView {
  const encoder = new TextEncoder();
  return {
    frames(events) {
      const out: Uint8Array[] = [];
      for (const e of events) {
        const m = translate(e, user);
        if (m) out.push(envelope(codec === "proto" ? toBinary(ChatMessageSchema, m) : encoder.encode(toJsonString(ChatMessageSchema, m))));
      }
      return { bytes: concat(out), count: out.length };
    },
    status: (err) => err && forLegacyClient(err),
  };
}

function failCall(call: DirectCall, err: unknown, opts: GrpcDirectOptions): void {
  const e = asConnectError(err);
  if (e.code === Code.Internal) opts.onError(err);
  call.fail(e);
}

/** One call on its HTTP/2 stream: headers, the response or batched frames, then the status. */
/** How a session's events and end look on the wire, when not as chat.v1 events (the old API). */
interface SessionView {
  frames(events: ChatEvent[]): { bytes: Uint8Array; count: number };
  status(err: ConnectError | undefined): ConnectError | undefined;
}

class DirectCall implements SessionSink {
  private status: ConnectError | undefined;
  private view: SessionView | undefined;
  private headersSent = false;
  private blocked = false;
  private ended = false;
  private core: ChatCore | undefined;
  private session: Session | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly h2: http2.ServerHttp2Stream,
    readonly wire: Wire,
    /** The compression the request's messages may use (its encoding header), if any. */
    readonly compression: string | undefined,
    readonly metrics: CallMetrics,
  ) {
    calls.set(h2, this);
    h2.on("error", ignore);
    // "on", not "once": each comes at most once, and once() would wrap each in a closure.
    h2.on("close", onStreamClose);
    if (wire.trailers) h2.on("wantTrailers", onWantTrailers);
  }

  private respond(): void {
    this.h2.respond({ ":status": 200, "content-type": this.wire.contentType }, { waitForTrailers: this.wire.trailers });
    this.headersSent = true;
  }

  get gone(): boolean {
    return this.h2.closed || this.h2.destroyed;
  }

  /** The status is decided (and on its way, or sent). */
  get finished(): boolean {
    return this.ended;
  }

  /** A unary call's response message, then status OK. */
  reply(message: Uint8Array): void {
    if (this.gone || this.ended) return;
    this.respond();
    this.metrics.sent();
    this.end(undefined, envelope(message));
  }

  /** Fails the call with DeadlineExceeded if it is still going after `ms` (grpc-timeout). */
  failAfter(ms: number): void {
    this.timer = setTimeout(() => {
      const err = new ConnectError("the operation timed out", Code.DeadlineExceeded);
      if (this.session && this.core) void this.core.close(this.session, err);
      else this.fail(err);
    }, ms);
  }

  /** Streams the session's events until it ends, then ends the call with its status. */
  stream(core: ChatCore, s: Session, view?: SessionView): void {
    this.core = core;
    this.session = s;
    this.view = view;
    this.respond();
    s.attach(this);
    this.flush();
  }

  readable(): void {
    flushSoon(this);
  }

  /** Writes everything the session has queued as one buffer; ends the call once the session ended. */
  flush(): void {
    const s = this.session;
    if (!s || this.ended || this.gone) return;
    if (!this.blocked) {
      const events = s.take();
      if (events.length > 0) {
        const { bytes, count } = this.view ? this.view.frames(events) : { bytes: framesOf(events, this.wire.codec), count: events.length };
        if (count > 0) {
          this.metrics.sent(count);
          if (!this.h2.write(bytes)) {
            this.blocked = true;
            this.h2.once("drain", onStreamDrain);
          }
        }
      }
    }
    // The trailers follow the data written, or the stream is reset if its client never reads it.
    if (s.closed && s.pending === 0) this.end(this.view ? this.view.status(s.error) : s.error);
  }

  drained(): void {
    this.blocked = false;
    this.flush();
  }

  /** Ends the call with `err` (OK without one), with or without a response before it. */
  fail(err: ConnectError | undefined): void {
    if (this.gone || this.ended) return;
    if (!this.headersSent) this.respond();
    this.end(err);
  }

  trailers(): void {
    this.h2.sendTrailers(this.wire.trailerFields(this.status));
  }

  /** The stream closed: after the status, or because the client canceled or the connection went. */
  closed(): void {
    clearTimeout(this.timer);
    this.metrics.finish("Canceled");
    if (this.session && !this.session.closed) void this.core?.close(this.session, new ConnectError("the client canceled the call", Code.Canceled));
  }

  private end(err: ConnectError | undefined, last?: Uint8Array): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.status = err;
    this.metrics.finish(goCode(err));
    // gRPC's status follows in trailers; the others' is the body's last frame.
    const end = this.wire.endFrame(err);
    const tail = last && end ? concat([last, end]) : (last ?? end);
    if (tail) this.h2.end(tail);
    else this.h2.end();
    // The client may still be sending (a request over the size limit, a Chat stream the server
    // ended): the call is over, so end the stream with RST_STREAM NO_ERROR once the response is
    // out (RFC 9113 section 8.1) rather than read the rest.
    if (!this.h2.readableEnded) this.h2.once("finish", onFinishEarly);
    // A client that stopped reading cannot take the status: reset its stream after a grace period.
    // Not only when a write is waiting now: the kernel's buffers may have taken the last writes.
    if (err && (this.blocked || this.session?.fellBehind)) setTimeout(resetIfOpen, STUCK_GRACE_MS, this.h2).unref?.();
  }
}

// The stream's listeners are shared functions, not closures per call: an idle Subscribe costs
// a few hundred bytes less, times tens of thousands.
const calls = new WeakMap<http2.ServerHttp2Stream, DirectCall>();
function onStreamClose(this: http2.ServerHttp2Stream) {
  calls.get(this)?.closed();
}
function onWantTrailers(this: http2.ServerHttp2Stream) {
  calls.get(this)?.trailers();
}
function onStreamDrain(this: http2.ServerHttp2Stream) {
  calls.get(this)?.drained();
}
function onFinishEarly(this: http2.ServerHttp2Stream) {
  if (!this.closed && !this.readableEnded) this.close(0);
}
function resetIfOpen(h2: http2.ServerHttp2Stream) {
  // Not `closed`: an HTTP/1.1 response looks complete once the kernel has its bytes (http1-stream.ts).
  if (!h2.destroyed) h2.close(ENHANCE_YOUR_CALM);
}

/**
 * The length of the message whose 5-byte prefix starts `head`: the flags must be valid for the
 * call (compressed only if the request names a compression), the length within `maxBytes`.
 */
function messageLength(head: Buffer, maxBytes: number, call: DirectCall): number {
  const flagsError = requestFlagsError(head[0], call.compression !== undefined, call.wire.encodingHeader);
  if (flagsError) throw flagsError;
  const length = head.readUInt32BE(1);
  if (length > maxBytes) throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
  return length;
}

/**
 * Appends `chunk` to the unparsed bytes `pending`, moves every whole message (with its prefix) to
 * `ready`, and returns what is left of a message still arriving; throws on a bad prefix.
 */
function splitMessages(pending: Buffer, chunk: Buffer, ready: Uint8Array[], maxBytes: number, call: DirectCall): Buffer {
  let rest = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
  while (rest.length >= 5) {
    const length = messageLength(rest, maxBytes, call);
    if (rest.length < 5 + length) break;
    ready.push(rest.subarray(0, 5 + length));
    rest = rest.subarray(5 + length);
  }
  return rest;
}

/**
 * Reads the request's single length-prefixed message, with its prefix, refusing one over
 * `maxBytes` as soon as its prefix says so.
 */
function readOneMessage(stream: http2.ServerHttp2Stream, maxBytes: number, call: DirectCall): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let expected = -1;
    const fail = (err: ConnectError) => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (expected < 0 && size >= 5) {
        try {
          expected = messageLength(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), maxBytes, call);
        } catch (err) {
          return fail(err as ConnectError);
        }
      }
      if (expected >= 0 && size > 5 + expected) fail(new ConnectError("the call takes exactly one request message", Code.InvalidArgument));
    };
    const onEnd = () => {
      cleanup();
      if (size === 0) return reject(new ConnectError("the call needs a request message", Code.InvalidArgument));
      if (expected < 0 || size < 5 + expected) return reject(cutShort());
      resolve(Buffer.concat(chunks));
    };
    const onClose = () => fail(new ConnectError("the client canceled the call", Code.Canceled));
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onClose);
  });
}

const cutShort = () => new ConnectError("the request message was cut short", Code.InvalidArgument);

/**
 * The request's messages as they arrive, each with its prefix. The stream is paused while messages wait to be taken,
 * so a client that sends faster than its requests are handled is slowed by flow control. Not the
 * stream's own async iterator: leaving that early (a bad message) destroys the stream, and with
 * it the status the client should get.
 */
async function* readMessages(stream: http2.ServerHttp2Stream, maxBytes: number, call: DirectCall): AsyncGenerator<Uint8Array> {
  let pending: Buffer = Buffer.alloc(0);
  const ready: Uint8Array[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    try {
      pending = splitMessages(pending, chunk, ready, maxBytes, call);
    } catch (err) {
      failure = err;
      stream.off("data", onData);
    }
    if (ready.length > 0) stream.pause();
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  stream.on("data", onData);
  stream.once("end", onEnd);
  stream.once("close", onEnd);
  try {
    for (;;) {
      const message = ready.shift();
      if (message) {
        if (ready.length === 0 && failure === undefined) stream.resume();
        yield message;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) {
        if (pending.length > 0) throw cutShort();
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("close", onEnd);
  }
}

/** The request's headers as auth reads them, without copying them into a fetch Headers. */
class H2Headers implements HeaderSource {
  constructor(private readonly h: http2.IncomingHttpHeaders) {}

  get(name: string): string | null {
    const v = this.h[name];
    return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
  }
}
