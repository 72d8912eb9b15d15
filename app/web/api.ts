// How the page talks to the server: Connect over fetch (binary protobuf, HTTP/1.1 or whatever the
// browser picks), with the tab's credentials on every call.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ChatService } from "../gen/chat/v1/chat_pb.ts";
import { CONFIG_META, type ServerConfig } from "./page-config.ts";

export type { ServerConfig };

/** The config the server put in the page (see pageWithConfig in bundle.ts), if it did. */
export function pageConfig(): ServerConfig | undefined {
  const content = document.querySelector<HTMLMetaElement>(`meta[name="${CONFIG_META}"]`)?.content;
  try {
    const c = content ? JSON.parse(content) : undefined;
    return c?.auth === "dev" || c?.auth === "jwt" ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Dev mode: a name (the x-user header). Otherwise a token (authorization: Bearer). */
export type Credentials = { mode: "dev"; user: string } | { mode: "jwt"; token: string };

const CREDS_KEY = "edgechat.credentials";
// The server's own rules, bundled into the page: a name the page accepts is one the server does.
export { dmRoom, isDmRoom, isPublicRoomName, isValidUserId, ROOM_NAME_RULE, USER_ID_RULE } from "../rules/names.ts";

/** Per tab: a reload keeps them, a new tab signs in again. */
export function loadCredentials(): Credentials | undefined {
  try {
    const c = JSON.parse(sessionStorage.getItem(CREDS_KEY) ?? "null");
    if (c?.mode === "dev" && typeof c.user === "string") return c;
    if (c?.mode === "jwt" && typeof c.token === "string") return c;
  } catch {
    // Unreadable: sign in again.
  }
  return undefined;
}

export function saveCredentials(c: Credentials | undefined): void {
  if (c) sessionStorage.setItem(CREDS_KEY, JSON.stringify(c));
  else sessionStorage.removeItem(CREDS_KEY);
}

export function authHeaders(c: Credentials): Record<string, string> {
  return c.mode === "dev" ? { "x-user": c.user } : { authorization: `Bearer ${c.token}` };
}

/** The subject of a JWT, read without verifying it (the server does that), for display. */
export function tokenSubject(token: string): string | undefined {
  try {
    const part = token.split(".")[1] ?? "";
    const json = atob(
      part
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(part.length / 4) * 4, "="),
    );
    const sub = JSON.parse(json).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    return undefined;
  }
}

export function chatClient(creds: Credentials): Client<typeof ChatService> {
  const headers = authHeaders(creds);
  const auth: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [auth] });
  return createClient(ChatService, transport);
}

/**
 * A typing notice. Subscribe clients have no request stream to send one on, so the server takes
 * them at POST /typing (same credentials, `{room}`, at most one a second per room is forwarded).
 */
export async function sendTyping(creds: Credentials, room: string): Promise<void> {
  await fetch("/typing", {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeaders(creds) },
    body: JSON.stringify({ room }),
  }).catch(() => undefined);
}

/** An idempotency key; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** What to tell a person about a failed call. */
export function describe(err: unknown): string {
  const ce = ConnectError.from(err);
  if (ce.code === Code.Unavailable || ce.code === Code.Unknown) {
    return ce.rawMessage && !/fetch|network/i.test(ce.rawMessage) ? ce.rawMessage : "The server cannot be reached right now.";
  }
  return ce.rawMessage || Code[ce.code];
}

export function isAuthError(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}

/** Worth retrying with the same idempotency key: the call may not have reached the server. */
export function isTransient(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.DeadlineExceeded;
}
