// JWTs for tests against a server started with EDGECHAT_JWT_SECRET.
import { SignJWT } from "jose";

export const TEST_SECRET = "edgechat-test-secret-that-is-long-enough-for-hs256";

export interface TokenOptions {
  /** HMAC key; TEST_SECRET unless given. */
  secret?: string;
  /** Seconds from now for exp; null leaves exp out. Default: one hour. */
  expiresIn?: number | null;
  /** Signing algorithm; the server accepts only HS256. */
  alg?: "HS256" | "HS384" | "HS512";
  /** Extra claims. */
  claims?: Record<string, unknown>;
}

/** A signed token whose subject is `sub` (no sub claim when undefined). */
export async function mintToken(sub: string | undefined, opts: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...opts.claims }).setProtectedHeader({ alg: opts.alg ?? "HS256", typ: "JWT" }).setIssuedAt(now - 5);
  if (sub !== undefined) jwt.setSubject(sub);
  const expiresIn = opts.expiresIn === undefined ? 3600 : opts.expiresIn;
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? TEST_SECRET));
}

/** The request headers that carry a token. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
