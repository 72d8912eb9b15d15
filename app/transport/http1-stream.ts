// An HTTP/1.1 request and its response, seen as the HTTP/2 stream the direct path (direct.ts)
// writes: the same calls (respond, write with backpressure, end, reset) and events (data, end, drain,
// finish, close), so that a gRPC-Web or Connect Subscribe from a browser, which speaks HTTP/1.1, is
// served by the same code as one on HTTP/2. gRPC itself needs HTTP/2 (its status is in trailers),
// so it never comes here. Listeners are called with this object as `this`, as on a stream.
import type http from "node:http";
import type http2 from "node:http2";

type Listener = (...args: any[]) => void;

const REQUEST_EVENTS = new Set(["data", "end"]);

export class Http1Stream {
  private ended = false;
  private readonly bound = new Map<Listener, Listener>();

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

  on(event: string, f: Listener): this {
    if (event === "error") {
      this.req.on("error", this.bind(f));
      this.res.on("error", this.bind(f));
    } else if (event !== "wantTrailers") (REQUEST_EVENTS.has(event) ? this.req : this.res).on(event, this.bind(f));
    return this;
  }

  once(event: string, f: Listener): this {
    const g = (...args: unknown[]) => {
      this.off(event, f);
      f.apply(this, args);
    };
    this.bound.set(f, g);
    (REQUEST_EVENTS.has(event) ? this.req : this.res).once(event, g);
    return this;
  }

  off(event: string, f: Listener): this {
    const g = this.bound.get(f);
    if (g) (REQUEST_EVENTS.has(event) ? this.req : this.res).off(event, g);
    return this;
  }

  respond(headers: http2.OutgoingHttpHeaders): void {
    this.res.writeHead(Number(headers[":status"] ?? 200), { "content-type": String(headers["content-type"]) });
    // A stream's headers go out now, not with its first message, which may be minutes away.
    this.res.flushHeaders();
  }

  write(bytes: Uint8Array): boolean {
    return this.res.write(bytes);
  }

  end(bytes?: Uint8Array): void {
    if (bytes) this.res.end(bytes);
    else this.res.end();
  }

  get closed(): boolean {
    return this.ended || this.res.destroyed || this.req.socket.destroyed;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  get readableEnded(): boolean {
    return this.req.readableEnded;
  }

  /** NO_ERROR after a complete response: nothing to do. Anything else resets: HTTP/1.1 can only close the connection. */
  close(code = 0): void {
    if (code !== 0) this.req.socket.destroy();
  }

  pause(): void {
    this.req.pause();
  }

  resume(): void {
    this.req.resume();
  }

  sendTrailers(): void {
    throw new Error("HTTP/1.1 has no trailers here: a protocol that needs them (gRPC) is not served on HTTP/1.1");
  }
}
