// Standard Webhooks signatures (standardwebhooks.com): HMAC-SHA256 over "<id>.<timestamp>.<body>"
// with the endpoint's secret ("whsec_" and the key in base64), sent as "v1,<base64>" in
// webhook-signature, beside webhook-id and webhook-timestamp. Receivers verify with any Standard
// Webhooks library. Written here: it is one HMAC, and node:crypto has it.
import { createHmac, randomBytes } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
/** The secret's key length, in bytes: as long as the hash. */
const KEY_BYTES = 32;

/** A new endpoint secret. */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(KEY_BYTES).toString("base64");
}

/** The key of a secret, or an error saying what is wrong with it. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error(`a webhook secret starts with "${SECRET_PREFIX}" (edgechat webhook-secret makes one)`);
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
  if (key.length < 24) throw new Error(`a webhook secret's key must be at least 24 bytes of base64 after "${SECRET_PREFIX}"`);
  return key;
}

/** The three headers of a delivery. */
export function signedHeaders(key: Buffer, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const signature = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": String(timestampSeconds), "webhook-signature": `v1,${signature}` };
}
