// Who is calling. With a key (EDGECHAT_JWT_SECRET or EDGECHAT_JWKS_URL) the user is the subject of
// a verified JWT; without one (dev mode) the user is whatever the x-user header says.
import { Code, ConnectError } from "@connectrpc/connect";
import type { JWTVerifyGetKey } from "jose";
import { checkUserId } from "../rules/names.ts";
import { API_KEY_PREFIX, keyOnUserApi } from "./api-keys.ts";

export interface AuthOptions {
  jwtSecret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

/** Where request headers come from: fetch's Headers, or anything else that can look one up. */
export interface HeaderSource {
  get(name: string): string | null;
}

/** Who a request is from, and until when its credential holds. */
export interface Identity {
  user: string;
  /** A token's exp, in ms since the epoch: a stream opened with it ends then. None in dev mode. */
  expiresAtMs?: number;
  /** The token's ADMIN_CLAIM is true: a server-wide admin, who may manage every room. */
  admin?: boolean;
}

/** The claim that makes a token's user a server-wide admin: `"edgechat_admin": true`. */
export const ADMIN_CLAIM = "edgechat_admin";

export interface Authenticator {
  /** "jwt" when a key is configured, else "dev". */
  readonly mode: "jwt" | "dev";
  /**
   * The user of a request from its headers. In dev mode returns undefined when x-user is absent
   * (the old API names the user in its first message instead); in jwt mode it always resolves a
   * user or throws Unauthenticated.
   */
  authenticate(headers: HeaderSource): Promise<string | undefined>;
  /** authenticate(), with the credential's expiry: what a stream needs to end on time. */
  identify(headers: HeaderSource): Promise<Identity | undefined>;
}

/** A token that has expired, at a call or on an open stream: the same words everywhere. */
export function tokenExpired(): ConnectError {
  return unauthenticated("expired", "token expired: get a new one");
}

// jose is imported on the first token to verify, not at start: dev mode never needs it, and it is
// a measurable part of a cold start.
type Jose = typeof import("jose");
let jose: Promise<Jose> | undefined;
const loadJose = () => (jose ??= import("jose"));

/** HS256's key should be as long as its hash (RFC 7518 section 3.2): a shorter one can be guessed. */
export const MIN_SECRET_BYTES = 32;

/** A call that names no user where the server needs one (dev mode without x-user). */
export function noUserError(): ConnectError {
  return new ConnectError("no user: in dev mode, send the header `x-user: <your id>`", Code.Unauthenticated);
}
/** How far ahead of this server's clock a token's iat may be (the issuer's clock may run fast). */
const IAT_SKEW_SECONDS = 60;

export function createAuthenticator(opts: AuthOptions): Authenticator {
  // A bad URL still fails here, at start. The remote key set fetches nothing before it is used.
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  if (secret && secret.length < MIN_SECRET_BYTES) {
    throw new Error(`EDGECHAT_JWT_SECRET is ${secret.length} bytes; it must be at least ${MIN_SECRET_BYTES} (\`openssl rand -base64 48\` makes a good one)`);
  }
  const jwksUrl = secret || !opts.jwksUrl ? undefined : new URL(opts.jwksUrl);
  let remoteKeys: JWTVerifyGetKey | undefined;
  const key: ((j: Jose) => Uint8Array | JWTVerifyGetKey) | undefined = secret
    ? () => secret
    : jwksUrl
      ? (j) => (remoteKeys ??= j.createRemoteJWKSet(jwksUrl))
      : undefined;
  if (!key) {
    const authenticate = async (headers: HeaderSource) => {
      refuseApiKey(headers);
      const user = headers.get("x-user") ?? undefined;
      return user === undefined ? undefined : checkUserId(user, "x-user");
    };
    return {
      mode: "dev",
      authenticate,
      async identify(headers) {
        const user = await authenticate(headers);
        return user === undefined ? undefined : { user };
      },
    };
  }
  const algorithms = opts.jwtSecret ? ["HS256"] : undefined;
  const identify = async (headers: HeaderSource): Promise<Identity> => {
    const header = headers.get("authorization");
    if (!header) throw unauthenticated("missing", "missing credentials: send the header `authorization: Bearer <JWT>`");
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw unauthenticated("malformed", "malformed authorization header: expected `Bearer <JWT>`");
    refuseApiKey(headers);
    const j = await loadJose();
    let sub: unknown;
    let iat: unknown;
    let exp: unknown;
    let admin: unknown;
    try {
      const { payload } = await j.jwtVerify(match[1], key(j) as Uint8Array, {
        algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
        requiredClaims: ["sub", "exp"],
      });
      ({ sub, iat, exp } = payload);
      admin = payload[ADMIN_CLAIM];
    } catch (err) {
      throw unauthenticated(...describe(j.errors, err));
    }
    // The claims' types are checked here, whatever the verifier let through: a signed token is
    // still input, and a sub that is not a string would reach the store as a user id.
    if (typeof sub !== "string") throw unauthenticated("subject", "the token's sub claim must be a string");
    if (!sub) throw unauthenticated("subject", "the token has no sub claim");
    if (iat !== undefined && (typeof iat !== "number" || iat > Date.now() / 1000 + IAT_SKEW_SECONDS)) {
      throw unauthenticated("claims", "the token's iat claim is in the future: check the issuer's clock");
    }
    let user: string;
    try {
      user = checkUserId(sub, "the token's sub claim");
    } catch (err) {
      throw unauthenticated("subject", (err as ConnectError).rawMessage);
    }
    // jwtVerify required exp and checked it is a number in the future.
    return { user, expiresAtMs: (exp as number) * 1000, admin: admin === true };
  };
  return {
    mode: "jwt",
    identify,
    authenticate: async (headers) => (await identify(headers)).user,
  };
}

/** An API key is for the server API: on the user API it is refused, saying so, whatever the mode. */
function refuseApiKey(headers: HeaderSource): void {
  const bearer = /^Bearer\s+(\S+)$/i.exec(headers.get("authorization") ?? "")?.[1];
  if (bearer?.startsWith(API_KEY_PREFIX)) throw unauthenticated("api_key", keyOnUserApi().rawMessage);
}

function describe(errors: Jose["errors"], err: unknown): [AuthFailure, string] {
  if (err instanceof errors.JWTExpired) return ["expired", tokenExpired().rawMessage];
  if (err instanceof errors.JWSSignatureVerificationFailed) return ["signature", "token signature is invalid"];
  if (err instanceof errors.JWTClaimValidationFailed) return ["claims", `token rejected: ${err.message}`];
  if (err instanceof errors.JOSEAlgNotAllowed) return ["algorithm", "token algorithm is not allowed (use HS256)"];
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return ["malformed", "token is malformed"];
  if (err instanceof errors.JWKSNoMatchingKey) return ["signature", "no key of the JWKS matches the token"];
  return ["other", "token could not be verified"];
}

/** Why a call was refused, as a small closed set for metrics. */
export const AUTH_FAILURES = ["missing", "malformed", "expired", "signature", "claims", "algorithm", "subject", "api_key", "other"] as const;
export type AuthFailure = (typeof AUTH_FAILURES)[number];
const reasons = new WeakMap<ConnectError, AuthFailure>();

export function authFailureReason(err: ConnectError): AuthFailure {
  return reasons.get(err) ?? "other";
}

function unauthenticated(reason: AuthFailure, message: string): ConnectError {
  const err = new ConnectError(message, Code.Unauthenticated);
  reasons.set(err, reason);
  return err;
}
