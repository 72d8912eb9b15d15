// API keys: how a backend calls chat.v1.ServerService. A key is a random string that starts with
// "ek_"; the server keeps only its SHA-256, with a name and scopes, from EDGECHAT_API_KEYS (or the
// file EDGECHAT_API_KEYS_FILE): one key per line (or per ";"), `<name> <scopes> <sha256 in hex>`,
// scopes comma-separated or "*" for all. `edgechat apikey` makes a key and its line. Written here,
// not with a library: a lookup by hash and a scope check are all there is to it.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { checkUserId } from "../rules/names.ts";
import type { HeaderSource } from "./auth.ts";

export const API_KEY_PREFIX = "ek_";
export const SCOPES = ["publish", "rooms", "moderate", "read", "webhooks"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  /** Who the key acts as (a user id: its room changes are recorded as this user), and what the logs say. */
  name: string;
  scopes: ReadonlySet<Scope>;
  sha256: Buffer;
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest();

/** A new key and the line that configures it. */
export function newApiKey(name: string, scopes: readonly Scope[]): { key: string; line: string } {
  checkUserId(name, "the key's name");
  const key = API_KEY_PREFIX + randomBytes(32).toString("base64url");
  return { key, line: `${name} ${scopes.length === SCOPES.length ? "*" : scopes.join(",")} ${sha256(key).toString("hex")}` };
}

/** The keys of EDGECHAT_API_KEYS and its file's text; throws, naming the line, on anything malformed. */
export function parseApiKeys(text: string, source: string): ApiKey[] {
  const keys: ApiKey[] = [];
  text.split(/[\n;]/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const where = `${source}, entry ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 3) throw new Error(`${where}: expected "<name> <scopes> <sha256>", got ${fields.length} fields`);
    const [name, scopeList, hash] = fields;
    try {
      checkUserId(name, "the key's name");
    } catch (err) {
      throw new Error(`${where}: ${(err as ConnectError).rawMessage}`);
    }
    const scopes = scopeList === "*" ? [...SCOPES] : scopeList.split(",");
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length) throw new Error(`${where}: unknown scope ${unknown.join(", ")}: the scopes are ${SCOPES.join(", ")}, or * for all`);
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`${where}: the key's SHA-256 must be 64 hex digits (edgechat apikey prints the line)`);
    if (keys.some((k) => k.name === name)) throw new Error(`${where}: a second key named "${name}"`);
    keys.push({ name, scopes: new Set(scopes as Scope[]), sha256: Buffer.from(hash, "hex") });
  });
  return keys;
}

/** The configured keys, and the checks of a call to the server API. */
export class ApiKeys {
  constructor(private readonly keys: readonly ApiKey[]) {}

  get size(): number {
    return this.keys.length;
  }

  /**
   * The key a call carries, allowed `scope`; throws Unauthenticated (no key, not a key, an unknown
   * key) or PermissionDenied (a browser's request, a scope the key lacks).
   */
  check(headers: HeaderSource, scope: Scope): ApiKey {
    // A browser always sends Origin with a POST: a key in a page is a leaked key, refused even if valid.
    if (headers.get("origin") !== null) {
      throw new ConnectError(
        "the server API is for servers: this request came from a browser (it has an Origin header); keep API keys out of pages",
        Code.PermissionDenied,
      );
    }
    const auth = headers.get("authorization") ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    if (!bearer) throw new ConnectError("the server API needs `authorization: Bearer <API key>` (edgechat apikey makes one)", Code.Unauthenticated);
    if (!bearer.startsWith(API_KEY_PREFIX)) {
      throw new ConnectError(`the server API takes an API key (${API_KEY_PREFIX}...), not a user's token`, Code.Unauthenticated);
    }
    const digest = sha256(bearer);
    const key = this.keys.find((k) => timingSafeEqual(k.sha256, digest));
    if (!key) throw new ConnectError(this.keys.length ? "unknown API key" : "this server has no API keys (EDGECHAT_API_KEYS)", Code.Unauthenticated);
    if (!key.scopes.has(scope)) throw new ConnectError(`the API key "${key.name}" does not have the scope "${scope}"`, Code.PermissionDenied);
    return key;
  }
}

/** A user API call that carries an API key: refused, with what to do instead (auth.ts). */
export function keyOnUserApi(): ConnectError {
  return new ConnectError("this is an API key: it works on chat.v1.ServerService only; users call ChatService with their own token", Code.Unauthenticated);
}
