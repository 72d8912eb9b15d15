// What a connection may hold before it has earned it, on the public port. A connection costs a file
// descriptor and memory from its first byte; without these rules one client could hold thousands
// that never finish a request, trickle headers forever, or reset streams as fast as it can open
// them, and reconnect when told to go.
//
// - Caps: connections per process and per client address, checked when a connection is accepted.
// - HTTP/1.1: a connection without a request in progress (a request head still trickling in, or
//   an idle keep-alive) is closed after `headersTimeoutMs`. WebSocket upgrades leave the guard:
//   the gateway pings its own.
// - HTTP/2: a connection without a stream is told to go away (GOAWAY) after `idleTimeoutMs`; one
//   with streams is pinged every `pingIntervalMs`, and destroyed if the ping is not answered: a
//   quiet stream is fine, a dead peer is not.
// - HTTP/2 request bodies: a stream of a call that takes one request message (unary, server
//   streaming) must have its whole body within `headersTimeoutMs`, or it is reset: otherwise a
//   client could hold a thousand streams per connection with half a message each. Streams of
//   calls whose requests stream (Chat) may be quiet for as long as they like.
// - Stream churn: HTTP/2 streams are counted per address across connections; an address that
//   opens more than `maxStreams` in a window is refused for `penaltyMs`, its open HTTP/2
//   connections included. This is what stops a rapid-reset client (HEADERS then RST_STREAM, as
//   fast as it can) that reconnects when a connection is closed on it: no real client opens
//   hundreds of streams a second from one address. Resets themselves cannot be told apart here:
//   under Bun a reset that arrives before the handler has answered often reads as a request that
//   ended, not as an aborted stream (measured).
//
// The rules are the same over TLS: there the protocol is known only after the handshake, so a new
// connection starts with the headers timeout, and an HTTP/2 session replaces it with its own.
//
// node:http's own headersTimeout and keepAliveTimeout are not enforced under Bun (measured: a
// trickle stayed open past 75 s), so the rules are kept here, the same for both protocols.
import type http from "node:http";
import http2 from "node:http2";
import type net from "node:net";

export interface GuardOptions {
  /** Open connections per process; 0: no cap. */
  maxConnections: number;
  /** Open connections per client address; 0: no cap (behind a proxy every client is the proxy). */
  maxPerAddress: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  /** Streams one address may open within `windowMs`, over all its connections; 0: no limit. */
  maxStreams: number;
  windowMs?: number;
  penaltyMs?: number;
  /** Told of every connection refused or closed by a rule, for the log and metrics. */
  onRefused?(reason: RefusalReason, address: string): void;
}

export type RefusalReason =
  | "max_connections"
  | "max_per_address"
  | "penalized"
  | "headers_timeout"
  | "body_timeout"
  | "idle_timeout"
  | "ping_timeout"
  | "stream_rate";

/** Whether a path's requests stream (client or bidi streaming); undefined while the routes are not known yet. */
export type StreamingRequests = (path: string) => boolean | undefined;

interface Conn {
  address: string;
  /** The peer's address and port (peerKey). */
  peer: string;
  socket: net.Socket;
  /** Requests (HTTP/1.1) or streams (HTTP/2) in progress. */
  busy: number;
  timer?: ReturnType<typeof setTimeout>;
  session?: http2.Http2Session;
  awaitingPing?: boolean;
}

interface AddressState {
  connections: number;
  streams: number;
  windowStart: number;
  penalizedUntil: number;
}

export class ConnectionGuard {
  private readonly conns = new Map<net.Socket, Conn>();
  private readonly addresses = new Map<string, AddressState>();
  private readonly sessions = new WeakMap<http2.Http2Session, Conn>();
  /** By the peer's address and port: under Bun a TLS session's socket is not the accepted socket. */
  private readonly byPeer = new Map<string, Conn>();
  private readonly pinger: ReturnType<typeof setInterval>;
  private readonly windowMs: number;
  private readonly penaltyMs: number;
  /** HTTP/2 streams whose request body has not ended yet, with when it must have. */
  private readonly bodies = new Map<http2.ServerHttp2Stream, { path: string; due: number }>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private streamingRequests: StreamingRequests = () => undefined;

  constructor(private readonly opts: GuardOptions) {
    this.windowMs = opts.windowMs ?? 10_000;
    this.penaltyMs = opts.penaltyMs ?? 30_000;
    this.pinger = setInterval(() => this.pingAll(), opts.pingIntervalMs);
    this.pinger.unref?.();
    this.sweeper = setInterval(() => this.sweepBodies(), Math.min(1000, opts.headersTimeoutMs));
    this.sweeper.unref?.();
  }

  /** Tells the guard which paths take streaming requests (known once the RPC routes are loaded). */
  setStreamingRequests(f: StreamingRequests): void {
    this.streamingRequests = f;
  }

  /** A new TCP (or TLS) connection: false, having destroyed it, when a cap refuses it. */
  admit(socket: net.Socket): boolean {
    const address = socket.remoteAddress ?? "";
    const a = this.address(address);
    const refuse = (reason: RefusalReason) => {
      this.opts.onRefused?.(reason, address);
      socket.destroy();
      this.forgetAddressIfIdle(address, a);
      return false;
    };
    if (a.penalizedUntil > Date.now()) return refuse("penalized");
    if (this.opts.maxConnections > 0 && this.conns.size >= this.opts.maxConnections) return refuse("max_connections");
    if (this.opts.maxPerAddress > 0 && a.connections >= this.opts.maxPerAddress) return refuse("max_per_address");
    a.connections++;
    const c: Conn = { address, peer: peerKey(socket), socket, busy: 0 };
    this.conns.set(socket, c);
    this.byPeer.set(c.peer, c);
    socketOwners.set(socket, this);
    // A shared listener, "on" rather than "once" (which wraps it): an idle connection costs no closure here.
    socket.on("close", onSocketClose);
    return true;
  }

  socketClosed(socket: net.Socket): void {
    const c = this.conns.get(socket);
    if (!c) return;
    clearTimeout(c.timer);
    this.conns.delete(socket);
    if (this.byPeer.get(c.peer) === c) this.byPeer.delete(c.peer);
    const a = this.address(c.address);
    a.connections--;
    this.forgetAddressIfIdle(c.address, a);
  }

  /** Open connections. */
  get size(): number {
    return this.conns.size;
  }

  /** Every open connection: its socket, and its HTTP/2 session once it has one. */
  open(): Iterable<Readonly<Pick<Conn, "socket" | "session">>> {
    return this.conns.values();
  }

  /**
   * The connection speaks HTTP/1.1, or (TLS) has not said which protocol yet: it has
   * `headersTimeoutMs` for each request head; an HTTP/2 session replaces that with its own rules.
   */
  http1(socket: net.Socket): void {
    const c = this.conns.get(socket);
    if (c) this.arm(c, this.opts.headersTimeoutMs, "headers_timeout");
  }

  /** Watches an HTTP/1.1 server's requests and upgrades. */
  watchHttp1(server: http.Server | http2.Http2SecureServer): void {
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      // HTTP/2 requests of a TLS server come here too: their session has its own rules.
      if ((req as unknown as { stream?: unknown }).stream) return;
      const c = this.conns.get(req.socket);
      if (!c) return;
      c.busy++;
      clearTimeout(c.timer);
      res.once("close", () => {
        if (--c.busy === 0 && !c.socket.destroyed) this.arm(c, this.opts.headersTimeoutMs, "headers_timeout");
      });
    });
    server.on("upgrade", (req: http.IncomingMessage) => this.release(req.socket));
  }

  /** The connection speaks HTTP/2: streams are counted, and the session is closed when idle. */
  http2(session: http2.Http2Session, socket: net.Socket | undefined): void {
    const c = (socket && this.conns.get(socket)) || (session.socket && this.byPeer.get(peerKey(session.socket)));
    if (!c) return;
    c.session = session;
    this.sessions.set(session, c);
    this.arm(c, this.opts.idleTimeoutMs, "idle_timeout");
  }

  /** A new HTTP/2 stream: the connection is busy until it closes. */
  stream(stream: http2.ServerHttp2Stream, path: string): void {
    const c = this.sessions.get(stream.session as http2.Http2Session);
    if (!c) return;
    c.busy++;
    clearTimeout(c.timer);
    streamOwners.set(stream, [this, c]);
    // Shared listeners, not closures per stream: a stream costs the guard one WeakMap entry.
    stream.on("close", onStreamClose);
    if (!stream.readableEnded && !stream.endAfterHeaders) {
      this.bodies.set(stream, { path, due: Date.now() + this.opts.headersTimeoutMs });
      stream.once("end", onStreamBodyEnd);
    }
    this.countStream(c.address);
  }

  bodyEnded(stream: http2.ServerHttp2Stream): void {
    this.bodies.delete(stream);
  }

  private sweepBodies(): void {
    const now = Date.now();
    for (const [stream, b] of this.bodies) {
      if (stream.closed || stream.destroyed || stream.readableEnded) {
        this.bodies.delete(stream);
        continue;
      }
      if (now < b.due) continue;
      const streaming = this.streamingRequests(b.path);
      if (streaming === undefined) continue; // asked again at the next sweep
      this.bodies.delete(stream);
      if (streaming) continue;
      const owner = streamOwners.get(stream);
      this.opts.onRefused?.("body_timeout", owner?.[1].address ?? "");
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }

  /** Stops guarding a connection (a WebSocket took it). */
  release(socket: net.Socket): void {
    const c = this.conns.get(socket);
    if (!c) return;
    clearTimeout(c.timer);
    c.timer = undefined;
    c.busy = Infinity;
  }

  close(): void {
    clearInterval(this.pinger);
    clearInterval(this.sweeper);
    for (const c of this.conns.values()) clearTimeout(c.timer);
  }

  streamClosed(c: Conn): void {
    c.busy--;
    if (c.busy === 0 && c.session && !c.session.destroyed) this.arm(c, this.opts.idleTimeoutMs, "idle_timeout");
  }

  private countStream(address: string): void {
    if (this.opts.maxStreams <= 0) return;
    const a = this.address(address);
    const now = Date.now();
    if (now - a.windowStart > this.windowMs) {
      a.windowStart = now;
      a.streams = 0;
    }
    if (++a.streams <= this.opts.maxStreams) return;
    // Reconnecting does not help: the address is refused for a while, on every connection.
    a.penalizedUntil = now + this.penaltyMs;
    a.streams = 0;
    this.opts.onRefused?.("stream_rate", address);
    for (const c of this.conns.values()) {
      if (c.address !== address) continue;
      if (c.session && !c.session.destroyed) c.session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      c.socket.destroy();
    }
  }

  private arm(c: Conn, ms: number, reason: RefusalReason): void {
    clearTimeout(c.timer);
    if (ms <= 0) return;
    c.timer = setTimeout(() => {
      this.opts.onRefused?.(reason, c.address);
      if (c.session && !c.session.destroyed) {
        // GOAWAY first: a client that is about to open a stream learns to use a new connection.
        c.session.close();
        setTimeout(() => c.socket.destroy(), 1000).unref?.();
      } else {
        c.socket.destroy();
      }
    }, ms);
    c.timer.unref?.();
  }

  private pingAll(): void {
    for (const [address, a] of this.addresses) this.forgetAddressIfIdle(address, a);
    for (const c of this.conns.values()) {
      const s = c.session;
      if (!s || s.destroyed || c.busy === 0) continue;
      if (c.awaitingPing) {
        // The last ping went unanswered for a whole interval: the peer is gone.
        this.opts.onRefused?.("ping_timeout", c.address);
        s.destroy();
        c.socket.destroy();
        continue;
      }
      c.awaitingPing = true;
      const sent = s.ping((err) => {
        if (!err) c.awaitingPing = false;
      });
      if (!sent) c.awaitingPing = false;
    }
  }

  private address(address: string): AddressState {
    let a = this.addresses.get(address);
    if (!a) this.addresses.set(address, (a = { connections: 0, streams: 0, windowStart: Date.now(), penalizedUntil: 0 }));
    return a;
  }

  private forgetAddressIfIdle(address: string, a: AddressState): void {
    const now = Date.now();
    if (a.connections === 0 && a.penalizedUntil <= now && (a.streams === 0 || now - a.windowStart > this.windowMs)) this.addresses.delete(address);
  }
}

function peerKey(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

const socketOwners = new WeakMap<net.Socket, ConnectionGuard>();
function onSocketClose(this: net.Socket) {
  socketOwners.get(this)?.socketClosed(this);
}

const streamOwners = new WeakMap<http2.ServerHttp2Stream, [ConnectionGuard, Conn]>();
function onStreamClose(this: http2.ServerHttp2Stream) {
  const owner = streamOwners.get(this);
  owner?.[0].bodyEnded(this);
  owner?.[0].streamClosed(owner[1]);
}
function onStreamBodyEnd(this: http2.ServerHttp2Stream) {
  streamOwners.get(this)?.[0].bodyEnded(this);
}
