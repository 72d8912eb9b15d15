// `edgechat token --user <id> [--ttl 1h] [--admin]`: an HS256 JWT signed with EDGECHAT_JWT_SECRET, for
// `edgechat chat --token`, EDGECHAT_TOKEN, or any client's `authorization: Bearer` header.
import { parseArgs } from "node:util";
import { ADMIN_CLAIM, MIN_SECRET_BYTES } from "../core/auth.ts";
import { isValidUserId, USER_ID_RULE } from "../rules/names.ts";
import { mintToken } from "./connection.ts";

const USAGE =
  "usage: edgechat token --user <id> [--ttl 1h] [--admin]   (signs with EDGECHAT_JWT_SECRET; --admin: a server-wide admin, who may manage every room)";

/** "90", "90s", "15m", "1h", "7d" -> seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  if (!m) throw new Error(`cannot read the duration "${s}": use a number with s, m, h or d (e.g. 30m, 1h, 7d)`);
  const n = Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  if (n <= 0) throw new Error("the ttl must be more than 0 seconds");
  return n;
}

export async function tokenCommand(args: string[], env = process.env, out = console.log, err = console.error): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { user: { type: "string" }, ttl: { type: "string", default: "1h" }, admin: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (!values.user) {
    err(`edgechat token: --user is required\n${USAGE}`);
    return 2;
  }
  if (!isValidUserId(values.user)) {
    err(`edgechat token: the user must be ${USER_ID_RULE} and not "Server" (got "${values.user}")`);
    return 2;
  }
  const secret = env.EDGECHAT_JWT_SECRET;
  if (!secret) {
    err("edgechat token: EDGECHAT_JWT_SECRET is not set: set it to the secret the server uses (the server's EDGECHAT_JWT_SECRET)");
    return 1;
  }
  if (new TextEncoder().encode(secret).length < MIN_SECRET_BYTES) {
    err(`edgechat token: EDGECHAT_JWT_SECRET is shorter than ${MIN_SECRET_BYTES} bytes, and the server refuses such a secret`);
    return 1;
  }
  out(await mintToken(values.user, secret, parseDuration(values.ttl!), values.admin ? { [ADMIN_CLAIM]: true } : {}));
  return 0;
}
