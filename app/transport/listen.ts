// One TCP port for HTTP/2 with prior knowledge (gRPC, and what Fly's proxy speaks with h2_backend)
// and HTTP/1.1 (browsers, curl). node:http2 speaks cleartext HTTP/1.1 only behind TLS, so each
// cleartext connection is sniffed: the HTTP/2 preface goes to the http2 server, anything else to
// the http server. Both run the same request handler.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { readFileSync } from "node:fs";
import { ConnectionGuard, type GuardOptions, type StreamingRequests } from "./connection-guard.ts";

type Handler = (req: any, res: any) => void;

export interface Listener {
  readonly port: number;
  /** Stops accepting connections and tells HTTP/2 clients to go away; open streams go on. */
  stopAccepting(): void;
  /**
   * Closes every connection gracefully (HTTP/2 sessions finish writing what they have, then close;
   * idle HTTP/1.1 sockets end), and destroys whatever is still open after `graceMs`.
   */
  close(graceMs: number): Promise<void>;
  /** Which paths take streaming requests, for the guard's request-body deadline. */
  setStreamingRequests(f: StreamingRequests): void;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  onError: (err: unknown) => void;
  /** Caps and timeouts per connection (connection-guard.ts). */
  guard: GuardOptions;
  /**
   * Sees each new HTTP/2 stream before the request handler; returns true for a stream it serves
   * itself, on the stream API (see direct.ts). The others get the request handler.
   */
  takeStream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;
  /** HTTP/1.1 upgrade requests (WebSocket): `accepts` picks them, `handle` takes their socket. */
  upgrade?: {
    accepts(req: http.IncomingMessage): boolean;
    handle(req: http.IncomingMessage, socket: import("node:stream").Duplex, head: Buffer): void;
  };
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Streams open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
export const MAX_CONCURRENT_STREAMS = 1000;

export async function listen(handler: Handler, opts: ListenOptions): Promise<Listener> {
  // The guard knows every open connection and its HTTP/2 session: close() and stopAccepting() use it.
  const guard = new ConnectionGuard(opts.guard);
  /** The cleartext socket being handed to the HTTP/2 server: its "session" event comes synchronously. */
  let handing: net.Socket | undefined;
  // A stream past the limit gets REFUSED_STREAM and the others go on (RFC 9113 5.1.2). Node's and
  // Bun's default ends the connection after 100 refusals, before the streams within the limit were
  // answered; a client that overshoots by as many streams as the limit is cut off.
  const h2opts = { settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS }, maxSessionRejectedStreams: MAX_CONCURRENT_STREAMS, noDelay: true };
  let front: net.Server;
  let h1: http.Server | undefined;
  let h2: http2.Http2Server | http2.Http2SecureServer;

  if (opts.tls) {
    h2 = http2.createSecureServer(
      { ...h2opts, cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key), allowHTTP1: true, ALPNProtocols: ["h2", "http/1.1"] },
      handler,
    );
    front = h2 as unknown as net.Server;
    // HTTP/1.1 over TLS: node:http2 has no shouldUpgradeCallback, so every upgrade comes here.
    if (opts.upgrade) h2.on("upgrade", opts.upgrade.handle);
    guard.watchHttp1(h2 as http2.Http2SecureServer);
  } else {
    h2 = http2.createServer(h2opts, handler);
    // Only the upgrades `accepts` takes leave the request handler (an h2c upgrade stays HTTP/1.1).
    h1 = http.createServer({ shouldUpgradeCallback: (req) => opts.upgrade?.accepts(req) ?? false }, handler);
    if (opts.upgrade) h1.on("upgrade", opts.upgrade.handle);
    // A streaming response may legitimately last for hours; the guard times out request heads.
    h1.requestTimeout = 0;
    guard.watchHttp1(h1);
    const hand = (socket: net.Socket, isH2: boolean) => {
      if (isH2) {
        handing = socket;
        h2.emit("connection", socket);
        handing = undefined;
      } else {
        guard.http1(socket);
        h1!.emit("connection", socket);
      }
    };
    // No Nagle: a stream writes small frames, and waiting for ACKs of earlier ones costs milliseconds each.
    front = net.createServer({ noDelay: true }, (socket) => {
      if (guard.admit(socket)) sniff(socket, hand, opts.onError);
    });
  }
  divertStreams(h2, (stream, headers) => {
    guard.stream(stream, String(headers[":path"] ?? ""));
    return opts.takeStream?.(stream, headers) ?? false;
  });
  h2.on("session", (s: http2.Http2Session) => {
    guard.http2(s, handing);
    s.on("error", opts.onError);
  });
  // TLS: the first request head (HTTP/1.1) or the HTTP/2 session must come in time, as in cleartext.
  if (opts.tls) front.on("connection", (socket: net.Socket) => guard.admit(socket) && guard.http1(socket));

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(opts.port, opts.host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  front.on("error", opts.onError);
  const address = front.address() as net.AddressInfo;

  return {
    port: address.port,
    setStreamingRequests: (f) => guard.setStreamingRequests(f),
    stopAccepting() {
      front.close();
      for (const { session: s } of guard.open()) if (s && !s.closed && !s.destroyed) s.goaway?.();
      h1?.closeIdleConnections?.();
    },
    async close(graceMs) {
      // No idle or ping timeouts during the grace period: the connections close as they finish.
      guard.close();
      for (const { session: s } of guard.open()) if (s && !s.closed && !s.destroyed) s.close();
      h1?.closeIdleConnections?.();
      const until = Date.now() + graceMs;
      while (guard.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      for (const { session, socket } of [...guard.open()]) {
        session?.destroy();
        socket.destroy();
      }
    },
  };
}

/**
 * Puts `take` in front of the server's request handler. A server made with a request handler
 * serves it from one "stream" listener that builds the compatibility request and response (the
 * same in Node and Bun); streams `take` does not want still go to it, so they pay for those objects
 * and the others do not.
 */
function divertStreams(h2: http2.Http2Server | http2.Http2SecureServer, take: NonNullable<ListenOptions["takeStream"]>): void {
  const listeners = h2.listeners("stream");
  if (listeners.length !== 1) throw new Error(`expected the HTTP/2 server's one compatibility stream listener, found ${listeners.length}`);
  const compat = listeners[0] as (...args: unknown[]) => void;
  h2.removeListener("stream", compat);
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
    if (!take(stream, headers)) compat.call(h2, stream, headers, ...rest);
  });
}

/** A connection that says nothing for this long is dropped before it costs more than a socket. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

function sniff(socket: net.Socket, hand: (socket: net.Socket, isH2: boolean) => void, onError: (err: unknown) => void): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(destroySocket, FIRST_BYTES_TIMEOUT_MS, socket);
  timer.unref?.();
  const onClose = () => clearTimeout(timer);
  socket.once("close", onClose);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && seen.length < PREFACE.length) return; // the preface arrived in pieces: read on
    // Nothing of the sniffing stays behind for the connection's lifetime.
    clearTimeout(timer);
    socket.off("close", onClose);
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    hand(socket, isH2);
    socket.resume();
  };
  socket.on("data", onData);
  socket.on("error", onError);
}
