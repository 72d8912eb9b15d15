// The WebSocket gateway at /ws: the Chat stream for clients that want full duplex without HTTP/2.
// Each text frame is one chat.v1.ChatRequest (client to server) or ChatEvent (server to client) in
// protobuf JSON; the requests go to the same ChatCore as the Chat RPC, with the same limits, errors
// (as `error` events with the Connect code) and resume. docs/api.md ("WebSocket gateway") is the
// contract; this file follows it.
//
// What is different from an HTTP/2 stream, and how this deals with it:
// - A frame that cannot be decoded is answered with an `error` event and the connection goes on
//   (a Chat stream ends instead: there the framing itself is in doubt, here it is not).
// - There is no stream status: a session that ends with an error gets a last `error` event, then a
//   close frame whose code says what happened and whose reason is "<connect code>: <message>".
// - There is no flow control window: the socket's bufferedAmount is the backpressure. Events are
//   written only while it is under HIGH_WATER, so a reader that stops reading leaves them in the
//   session's bounded queue, which ends the session (the slow-consumer rule) once full.
import type http from "node:http";
import type { Duplex } from "node:stream";
import { STATUS_CODES } from "node:http";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeName } from "../rules/codes.ts";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { authFailureReason, type AuthFailure, type Authenticator, type Identity } from "../core/auth.ts";
import type { ChatCore } from "../core/chat.ts";
import { asConnectError, errorEvent } from "../core/events.ts";
import { checkUserId } from "../rules/names.ts";
import type { Session, SessionSink } from "../core/session.ts";
import { ChatRequestSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { jsonOf, wsFramesOf } from "./event-frames.ts";
import { flushSoon } from "./flush-soon.ts";
import type { Logger } from "../log.ts";
import { drainEnd, drainRefusal } from "../core/advice.ts";
import { STUCK_GRACE_MS } from "../core/limits.ts";

export const WS_PATH = "/ws";
/** The protocol label of WebSocket sessions in metrics. */
export const WS_PROTOCOL = "websocket";

/** Close codes (RFC 6455 section 7.4; 4xxx are ours, mirroring HTTP statuses). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013,
  unauthenticated: 4401,
  permissionDenied: 4403,
} as const;

/** Events are written while the socket holds less than this, unsent. */
const HIGH_WATER = 256 * 1024;
/** How long a client may take to authenticate when the upgrade request carried no credentials. */
const AUTH_TIMEOUT_MS = 10_000;
/** Inbound frames waiting to be handled before the socket stops being read (and after which it is read again). */
const PAUSE_AT = 32;
const RESUME_AT = 8;
/** The largest close reason RFC 6455 allows, in bytes. */
const MAX_REASON_BYTES = 123;

export interface GatewayOptions {
  core: ChatCore;
  auth: Authenticator;
  /** Frames over this many bytes close the connection with 1009 (EDGECHAT_MAX_REQUEST_BYTES). */
  maxFrameBytes: number;
  /** Interval of the WebSocket pings; a peer that has not answered the previous one is dropped. */
  pingSeconds: number;
  isDraining: () => boolean;
  /** A connection closed as unauthenticated, with why (for metrics and the log). */
  onAuthFailure?: (err: ConnectError, reason: AuthFailure) => void;
  log: Logger;
}

export interface Gateway {
  /** Whether an HTTP/1.1 upgrade request is for this gateway (a WebSocket upgrade of /ws). */
  accepts(req: http.IncomingMessage): boolean;
  /** Takes over the socket of an upgrade request (node:http's and node:http2's "upgrade" event). */
  handle(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Open WebSocket connections. */
  readonly connections: number;
  /**
   * Closes every connection that has no session yet with 1001 and waits until all are closed (the
   * core's drain ends the sessions, whose connections then close with 1001); destroys what is still
   * open after `ms`.
   */
  drain(ms: number): Promise<void>;
}

export function createGateway(opts: GatewayOptions): Gateway {
  // No compression: Connection.flush writes shared frames onto the socket beside ws.
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes, clientTracking: false, perMessageDeflate: false });
  const conns = new Set<Connection>();
  let allClosed: (() => void) | undefined;

  const pinger = setInterval(() => {
    for (const c of conns) c.ping();
  }, opts.pingSeconds * 1000);
  pinger.unref?.();

  return {
    accepts: (req) => isWebSocketUpgrade(req) && pathOf(req.url) === WS_PATH,

    handle(req, socket, head) {
      socket.on("error", (err) => opts.log.debug("websocket socket error", { err }));
      if (!isWebSocketUpgrade(req)) return refuse(socket, 400, "only WebSocket upgrades are served, at " + WS_PATH);
      if (pathOf(req.url) !== WS_PATH) return refuse(socket, 404, `no WebSocket endpoint at ${pathOf(req.url)}; use ${WS_PATH}`);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c = new Connection(ws, socket, req, opts);
        conns.add(c);
        ws.once("close", () => {
          conns.delete(c);
          if (conns.size === 0) allClosed?.();
        });
        c.start();
      });
    },

    get connections() {
      return conns.size;
    },

    async drain(ms) {
      clearInterval(pinger);
      const err = drainEnd();
      for (const c of conns) c.closeIfNoSession(err);
      if (conns.size > 0) {
        await new Promise<void>((resolve) => {
          allClosed = resolve;
          setTimeout(resolve, ms).unref?.();
        });
      }
      for (const c of conns) c.terminate();
    },
  };
}

/** One WebSocket connection: authentication, then one chat session. */
class Connection implements SessionSink {
  private session: Session | undefined;
  /** Frames (and the header authentication) in arrival order, handled one at a time. */
  private readonly jobs: (() => Promise<void>)[] = [];
  private running = false;
  private paused = false;
  /** Set once the server started closing, or the connection is gone: nothing more is handled. */
  private closing = false;
  private blocked = false;
  private gone = false;
  private alive = true;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly closed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    /** The upgraded socket, which ws writes to as well: events go onto it directly (flush). */
    private readonly socket: Duplex,
    private readonly req: http.IncomingMessage,
    private readonly opts: GatewayOptions,
  ) {
    this.closed = new Promise((resolve) =>
      ws.once("close", () => {
        this.gone = true;
        clearTimeout(this.authTimer);
        if (this.session) void opts.core.close(this.session);
        resolve();
      }),
    );
  }

  start(): void {
    const { ws, opts } = this;
    ws.on("error", (err) => opts.log.debug("websocket error", { err }));
    ws.on("pong", () => (this.alive = true));
    ws.on("message", (data, isBinary) => {
      this.alive = true;
      if (this.closing || this.gone) return;
      this.enqueue(() => this.onFrame(data, isBinary));
    });
    if (opts.isDraining()) {
      return this.fail(drainRefusal());
    }
    const headers = headersOf(this.req);
    if (opts.auth.mode === "jwt" ? headers.has("authorization") : headers.has("x-user")) {
      this.enqueue(() => this.authenticate(headers));
    } else {
      this.authTimer = setTimeout(() => {
        if (this.session || this.closing) return;
        this.fail(unauthenticated(`no credentials within ${AUTH_TIMEOUT_MS / 1000} s: ${this.signInHint()}`, "missing"));
      }, AUTH_TIMEOUT_MS);
      this.authTimer.unref?.();
    }
  }

  /** A ping per interval; a peer that did not answer the last one is gone (no close handshake to wait for). */
  ping(): void {
    if (this.gone) return;
    if (!this.alive) {
      this.opts.log.debug("websocket peer did not answer a ping", { user: this.session?.user });
      return this.terminate();
    }
    this.alive = false;
    this.ws.ping();
  }

  closeIfNoSession(err: ConnectError): void {
    if (!this.session) this.fail(err);
  }

  terminate(): void {
    if (!this.gone) this.ws.terminate();
  }

  private enqueue(job: () => Promise<void>): void {
    this.jobs.push(job);
    // A client that sends faster than its requests are handled is not read until it catches up.
    if (!this.paused && this.jobs.length >= PAUSE_AT) {
      this.paused = true;
      this.ws.pause();
    }
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.jobs.length > 0 && !this.closing && !this.gone) {
        await this.jobs.shift()!();
        if (this.paused && this.jobs.length <= RESUME_AT && !this.gone) {
          this.paused = false;
          this.ws.resume();
        }
      }
    } catch (err) {
      // A bug: the session (if any) ends with Internal, which closes the connection.
      this.opts.log.error("websocket frame failed", { err });
      if (this.session) void this.opts.core.close(this.session, asConnectError(err), true);
      else this.fail(asConnectError(err));
    } finally {
      this.running = false;
      this.jobs.length = 0;
    }
  }

  private async onFrame(data: RawData, isBinary: boolean): Promise<void> {
    const s = this.session;
    if (isBinary) {
      const err = new ConnectError("binary frames are not accepted: send each chat.v1.ChatRequest as a text frame of protobuf JSON", Code.InvalidArgument);
      return s ? void s.push(errorEvent(err)) : this.refuseFirstFrame(err.rawMessage);
    }
    const text = rawText(data);
    let json: JsonValue;
    try {
      json = JSON.parse(text) as JsonValue;
    } catch (err) {
      const msg = `the frame is not JSON (${(err as Error).message}): send one chat.v1.ChatRequest in protobuf JSON per text frame`;
      return s ? void s.push(errorEvent(new ConnectError(msg, Code.InvalidArgument))) : this.refuseFirstFrame(msg);
    }
    const isAuth = json !== null && typeof json === "object" && !Array.isArray(json) && "auth" in json;
    if (!s) {
      if (!isAuth) return this.refuseFirstFrame("the first frame must be an auth frame");
      return this.authenticateFrame(json as Record<string, JsonValue>);
    }
    if (isAuth) {
      const err = new ConnectError(`already signed in as "${s.user}": auth is accepted as the first frame only`, Code.FailedPrecondition);
      return void s.push(errorEvent(err));
    }
    let req;
    try {
      req = fromJson(ChatRequestSchema, json);
    } catch (err) {
      return void s.push(errorEvent(new ConnectError((err as Error).message, Code.InvalidArgument)));
    }
    await this.opts.core.handle(s, req);
  }

  /** The first frame, when the upgrade request had no credentials: {"auth":{"token"|"user": ...}}. */
  private async authenticateFrame(frame: Record<string, JsonValue>): Promise<void> {
    const mode = this.opts.auth.mode;
    const shape = mode === "jwt" ? '{"auth":{"token":"<JWT>"}}' : '{"auth":{"user":"<id>"}}';
    const a = frame.auth;
    const fields = a !== null && typeof a === "object" && !Array.isArray(a) ? Object.keys(a) : [];
    if (Object.keys(frame).length !== 1 || fields.length !== 1 || !["token", "user"].includes(fields[0])) {
      return this.fail(unauthenticated(`malformed auth frame: expected ${shape}`, "malformed"));
    }
    const value = (a as Record<string, JsonValue>)[fields[0]];
    if (typeof value !== "string") return this.fail(unauthenticated(`malformed auth frame: ${fields[0]} must be a string`, "malformed"));
    if (mode === "jwt") {
      if (fields[0] !== "token") return this.fail(unauthenticated(`this server needs a token: send ${shape}`, "missing"));
      return this.authenticate(new Headers({ authorization: `Bearer ${value}` }));
    }
    if (fields[0] !== "user") return this.fail(unauthenticated(`dev mode has no tokens: name yourself with ${shape}`, "missing"));
    let user: string;
    try {
      user = checkUserId(value, "auth.user");
    } catch (err) {
      return this.fail(asConnectError(err));
    }
    return this.open(user);
  }

  private async authenticate(headers: Headers): Promise<void> {
    let who: Identity | undefined;
    try {
      who = await this.opts.auth.identify(headers);
    } catch (err) {
      return this.fail(asConnectError(err));
    }
    if (who === undefined) return this.fail(unauthenticated("no user", "missing"));
    return this.open(who.user, who.expiresAtMs, who.admin === true);
  }

  private async open(user: string, expiresAtMs?: number, admin = false): Promise<void> {
    clearTimeout(this.authTimer);
    if (this.gone || this.closing) return;
    let s: Session;
    try {
      s = await this.opts.core.open(user, WS_PROTOCOL, expiresAtMs, admin);
    } catch (err) {
      return this.fail(asConnectError(err));
    }
    if (this.gone || this.closing) return void this.opts.core.close(s);
    this.session = s;
    s.attach(this);
    this.flush();
  }

  /** A frame before the client signed in that is not an auth frame. */
  private refuseFirstFrame(what: string): void {
    this.opts.log.debug("websocket frame before auth", { what });
    this.fail(unauthenticated(`not signed in: ${this.signInHint()}`, "missing"));
  }

  /** How to sign in; short, so that "unauthenticated: " + a prefix + this fits a close reason. */
  private signInHint(): string {
    return this.opts.auth.mode === "jwt"
      ? 'send {"auth":{"token":"<JWT>"}} first, or the authorization header'
      : 'send {"auth":{"user":"<id>"}} first, or x-user or ?user= on the upgrade';
  }

  readable(): void {
    flushSoon(this);
  }

  /**
   * Writes what the session has queued in one write while the socket keeps up; closes the
   * connection once the session has ended and everything queued is written. The frames are the
   * room's shared ones (event-frames.ts), written to the socket itself rather than through
   * ws.send(), which would encode and frame each event again for every connection. That keeps the
   * frames in order with what ws writes (pings, the close frame) because ws writes synchronously
   * too, as long as it compresses nothing (perMessageDeflate is off), and ws's bufferedAmount
   * counts these bytes as its own.
   */
  flush(): void {
    const s = this.session;
    if (!s || this.gone || this.closing || this.blocked) return;
    const events = s.take();
    if (events.length > 0) {
      this.socket.write(wsFramesOf(events));
      if (this.ws.bufferedAmount >= HIGH_WATER) {
        this.blocked = true;
        void this.drained(s).then(() => {
          this.blocked = false;
          this.flush();
        });
        return;
      }
    }
    if (s.closed && s.pending === 0) {
      this.fail(s.error);
      void this.opts.core.close(s);
    }
  }

  /** Resolves once the socket has room again, the session ended or the connection is gone. */
  private async drained(s: Session): Promise<void> {
    const socket = this.socket;
    while (this.ws.bufferedAmount >= HIGH_WATER && !this.gone && !s.closed) {
      let done!: () => void;
      const wake = new Promise<void>((resolve) => (done = resolve));
      const timer = setTimeout(done, 50);
      socket.once("drain", done);
      await Promise.race([wake, s.ended, this.closed]);
      clearTimeout(timer);
      socket.off("drain", done);
    }
  }

  private send(e: ChatEvent): void {
    this.ws.send(jsonOf(e));
  }

  /**
   * Ends the connection: without an error a normal close; with one, a last `error` event, then a
   * close with the code for the error and the reason "<code>: <message>".
   */
  private fail(error?: ConnectError): void {
    if (this.closing || this.gone) return;
    this.closing = true;
    clearTimeout(this.authTimer);
    if (error?.code === Code.Unauthenticated && !this.session) this.opts.onAuthFailure?.(error, ownReasons.get(error) ?? authFailureReason(error));
    if (error) this.send(errorEvent(error));
    this.ws.close(closeCodeFor(error, this.opts.isDraining()), error ? closeReason(error) : undefined);
    // A client that does not read cannot get the close frame either.
    const stuck = setTimeout(() => {
      if (!this.gone && this.ws.bufferedAmount > 0) this.ws.terminate();
    }, STUCK_GRACE_MS);
    stuck.unref?.();
    void this.closed.then(() => clearTimeout(stuck));
  }
}

/** The close code for a session or connection that ends with `error` (none: a normal close). */
export function closeCodeFor(error: ConnectError | undefined, draining: boolean): number {
  if (!error) return CloseCode.normal;
  switch (error.code) {
    case Code.Unauthenticated:
      return CloseCode.unauthenticated;
    case Code.PermissionDenied:
      return CloseCode.permissionDenied;
    case Code.Unavailable:
      return draining ? CloseCode.goingAway : CloseCode.tryAgainLater;
    case Code.ResourceExhausted:
    case Code.InvalidArgument:
      return CloseCode.policyViolation;
    default:
      return CloseCode.internal;
  }
}

/** "<connect code>: <message>", cut to the 123 bytes a close frame can carry. */
export function closeReason(error: ConnectError): string {
  const full = `${codeName(error.code)}: ${error.rawMessage}`;
  if (Buffer.byteLength(full) <= MAX_REASON_BYTES) return full;
  const chars = Array.from(full);
  while (Buffer.byteLength(chars.join("")) > MAX_REASON_BYTES - 3) chars.pop();
  return chars.join("") + "…";
}

/** Why the gateway itself refused a connection (the Authenticator keeps its own reasons). */
const ownReasons = new WeakMap<ConnectError, AuthFailure>();

function unauthenticated(message: string, reason: AuthFailure): ConnectError {
  const err = new ConnectError(message, Code.Unauthenticated);
  ownReasons.set(err, reason);
  return err;
}

function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  return req.method === "GET" && (req.headers.upgrade ?? "").toLowerCase() === "websocket";
}

function pathOf(url: string | undefined): string {
  const u = url ?? "/";
  const q = u.indexOf("?");
  return q < 0 ? u : u.slice(0, q);
}

/** The upgrade request's headers; in dev mode `?user=` stands for x-user (browsers cannot set headers). */
function headersOf(req: http.IncomingMessage): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
  }
  if (!h.has("x-user")) {
    const user = new URL(req.url ?? "/", "http://localhost").searchParams.get("user");
    if (user !== null) h.set("x-user", user);
  }
  return h;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return typeof data === "string" ? data : data.toString("utf8");
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
