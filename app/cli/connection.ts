// Shared client plumbing for the edgechat commands: one connection to a server over a chosen
// protocol, unary calls, and the bidi Chat stream behind one small interface (the WebSocket
// gateway included, see ws-stream.ts).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ChatRequestSchema, ChatService, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { openWsChat } from "./ws-stream.ts";
import { codeName } from "../rules/codes.ts";

export type Protocol = "grpc" | "connect" | "grpc-web" | "websocket";
export const PROTOCOLS: Protocol[] = ["grpc", "connect", "grpc-web", "websocket"];

export type ChatRequestInit = MessageInitShape<typeof ChatRequestSchema>;

/** One open Chat session: write requests, read events until the stream ends. */
export interface ChatStream {
  send(req: ChatRequestInit): void;
  /** The server's events; the iteration ends when the stream does, and throws a ConnectError on failure. */
  readonly events: AsyncIterable<ChatEvent>;
  /** Half-closes: the server writes what is queued and ends the stream. */
  close(): void;
  /** Drops the stream at once. */
  abort(): void;
}

export interface Credentials {
  user?: string;
  token?: string;
}

/**
 * The request headers for a user: a bearer token when there is one, else `x-user` (dev mode).
 * Throws when the token cannot be a header value: retrying could never fix that, and what usually
 * happened (other output captured with it) is worth saying.
 */
export function authHeaders(c: Credentials): Record<string, string> {
  if (c.token) {
    const token = c.token.trim();
    const bad = /[^\x21-\x7e]/.exec(token);
    if (bad) {
      const what = /[\r\n]/.test(token) ? "a line break" : /\s/.test(bad[0]) ? "a blank" : `the character ${JSON.stringify(bad[0])}`;
      throw new Error(
        `the token has ${what} in it, so it cannot be sent as a header: it should be only the token (when capturing it, use \`npm run -s edgechat -- token\` or the edgechat binary, so that nothing else is captured with it)`,
      );
    }
    return { authorization: `Bearer ${token}` };
  }
  if (c.user) return { "x-user": c.user };
  return {};
}

export interface ConnectionOptions {
  url: string;
  protocol: Protocol;
  headers: Record<string, string>;
  /** HTTP/2 keepalive: a PING this often when the connection is quiet, so a dead network is noticed. */
  pingIntervalMs?: number;
}

/**
 * One HTTP/2 connection (its own session manager, so closing it closes the socket) and a client
 * for it. With protocol "websocket" the Chat stream goes over the gateway at /ws and unary calls
 * over Connect.
 */
export class Connection {
  readonly client: Client<typeof ChatService>;
  private readonly sessions: Http2SessionManager;

  constructor(readonly opts: ConnectionOptions) {
    const ping = opts.pingIntervalMs ? { pingIntervalMs: opts.pingIntervalMs, pingTimeoutMs: Math.min(opts.pingIntervalMs, 5000) } : {};
    this.sessions = new Http2SessionManager(opts.url, ping);
    this.client = createClient(ChatService, makeTransport(opts.url, opts.protocol, this.sessions));
  }

  /** Call options for unary calls: the credentials and a deadline. */
  call(timeoutMs = 10_000) {
    return { headers: this.opts.headers, timeoutMs };
  }

  openChat(): ChatStream {
    if (this.opts.protocol === "websocket") return openWsChat(this.opts.url, this.opts.headers);
    const requests = createWritableIterable<ReturnType<typeof create<typeof ChatRequestSchema>>>();
    const abort = new AbortController();
    const events = this.client.chat(requests, { headers: this.opts.headers, signal: abort.signal });
    return {
      // write() resolves when the request is taken, rejects once the stream is over: the stream's
      // own end reports that, so the rejection is not interesting here.
      send: (req) => void requests.write(create(ChatRequestSchema, req)).catch(() => {}),
      events,
      close: () => requests.close(),
      abort: () => abort.abort(),
    };
  }

  close(): void {
    this.sessions.abort();
  }
}

function makeTransport(baseUrl: string, protocol: Protocol, sessionManager: Http2SessionManager): Transport {
  const opts = { baseUrl, httpVersion: "2", sessionManager, useBinaryFormat: true } as const;
  switch (protocol) {
    case "grpc":
      return createGrpcTransport(opts);
    case "grpc-web":
      return createGrpcWebTransport(opts);
    case "connect":
    case "websocket":
      return createConnectTransport(opts);
  }
}

/** A short description of any error, with the Connect code when there is one: "unavailable: ...". */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  return `${codeName(e.code)}: ${e.rawMessage}`;
}

export { codeName };

/** A bearer token for `user`, HS256 with `secret`. */
export async function mintToken(user: string, secret: string, ttlSeconds: number, claims: Record<string, unknown> = {}): Promise<string> {
  const { SignJWT } = await import("jose");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
