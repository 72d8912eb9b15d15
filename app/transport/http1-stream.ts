// An HTTP/1.1 request and its response, seen as the HTTP/2 stream the direct path (direct.ts)
// writes: the same calls (respond, write with backpressure, end, reset) and events (data, end,
// drain, finish, close), so that gRPC-Web and Connect streams from browsers, which speak HTTP/1.1,
// are served by the same code as on HTTP/2; gRPC's status goes in chunked HTTP/1.1 trailers, which
// gRPC clients do not read (gRPC needs HTTP/2), but a hand-made call does. Listeners are called
// with this object as `this`, as on a stream.
//
// HTTP/1.1 has no reset for one response: ending a call early (a client that stopped reading, a
// request the server will not read to its end) means closing the connection. So a streamed
// response says `Connection: close` from the start: the connection carries this one call, and
// closing it harms nobody else.
import type http from "node:http";
import type http2 from "node:http2";

type Listener = (...args: any[]) => void;

const REQUEST_EVENTS = new Set(["data", "end"]);

export class Http1Stream {
  private ended = false;
  private readonly bound = new Map<Listener, Listener>();
  /** The "wantTrailers" listener, called just before the response ends when respond() asked for trailers. */
  private wantTrailers: Listener | undefined;

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
  ) {
    res.once("close", () => (this.ended = true));
  }

  /** This object where the direct path expects an HTTP/2 stream: it uses only what is here. */
  asStream(): http2.ServerHttp2Stream {
    return this as unknown as http2.ServerHttp2Stream;
  }

  private bind(f: Listener): Listener {
    let g = this.bound.get(f);
    if (!g) this.bound.set(f, (g = (...args: unknown[]) => f.apply(this, args)));
    return g;
  }

  private target(event: string): http.IncomingMessage | http.ServerResponse {
    return REQUEST_EVENTS.has(event) ? this.req : this.res;
  }

  on(event: string, f: Listener): this {
    if (event === "error") {
      this.req.on("error", this.bind(f));
      this.res.on("error", this.bind(f));
    } else if (event === "wantTrailers") this.wantTrailers = this.bind(f);
    else this.target(event).on(event, this.bind(f));
    return this;
  }

  once(event: string, f: Listener): this {
    const g = (...args: unknown[]) => {
      this.off(event, f);
      f.apply(this, args);
    };
    this.bound.set(f, g);
    this.target(event).once(event, g);
    return this;
  }

  off(event: string, f: Listener): this {
    const g = this.bound.get(f);
    if (g) this.target(event).off(event, g);
    return this;
  }

  respond(headers: http2.OutgoingHttpHeaders, options?: { waitForTrailers?: boolean }): void {
    if (!options?.waitForTrailers) this.wantTrailers = undefined;
    const head: http.OutgoingHttpHeaders = { "content-type": String(headers["content-type"]), connection: "close" };
    if (this.wantTrailers) head.trailer = "grpc-status, grpc-message";
    this.res.writeHead(Number(headers[":status"] ?? 200), head);
    // A stream's headers go out now, not with its first message, which may be minutes away.
    this.res.flushHeaders();
  }

  write(bytes: Uint8Array): boolean {
    return this.res.write(bytes);
  }

  end(bytes?: Uint8Array): void {
    this.wantTrailers?.();
    if (bytes) this.res.end(bytes);
    else this.res.end();
  }

  /** The response is over (complete, or its connection gone). */
  get closed(): boolean {
    return this.ended || this.res.destroyed || this.req.socket.destroyed;
  }

  /** The connection is gone: nothing more can be done to this call. */
  get destroyed(): boolean {
    return this.req.socket.destroyed;
  }

  get readableEnded(): boolean {
    return this.req.readableEnded;
  }

  /**
   * NO_ERROR once the response is complete: the connection closes after it anyway (respond).
   * Any other code is a reset, which HTTP/1.1 can only do by closing the connection, whether or
   * not the response looks finished: the kernel may hold what the client never read.
   */
  close(code = 0): void {
    if (code !== 0) this.req.socket.destroy();
  }

  pause(): void {
    this.req.pause();
  }

  resume(): void {
    this.req.resume();
  }

  sendTrailers(trailers: http.OutgoingHttpHeaders): void {
    this.res.addTrailers(trailers);
  }
}
