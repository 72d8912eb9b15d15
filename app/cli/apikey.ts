// `edgechat apikey`: makes a key for the server API (chat.v1.ServerService) and the line that
// configures it. The key goes to the backend that calls; the line (its SHA-256, never the key) goes
// into EDGECHAT_API_KEYS or EDGECHAT_API_KEYS_FILE.
import { parseArgs } from "node:util";
import { newApiKey, SCOPES, type Scope } from "../core/api-keys.ts";

const USAGE = `usage: edgechat apikey --name NAME [--scopes ${SCOPES.join(",")}]

  --name     who the key acts as: its room changes are recorded as this user id; the logs name it
  --scopes   what it may do, comma-separated (default: all): ${SCOPES.join(", ")}

Prints the key on stdout, and on stderr the line for EDGECHAT_API_KEYS (or EDGECHAT_API_KEYS_FILE).`;

export async function apikeyCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { name: { type: "string" }, scopes: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.name) {
    console.error(`edgechat apikey: give --name\n${USAGE}`);
    return 2;
  }
  const scopes = (values.scopes ?? SCOPES.join(",")).split(",").map((s) => s.trim());
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length) {
    console.error(`edgechat apikey: unknown scope ${unknown.join(", ")}: the scopes are ${SCOPES.join(", ")}`);
    return 2;
  }
  const { key, line } = newApiKey(values.name, scopes as Scope[]);
  console.log(key);
  console.error(`the server's line for this key (add it to EDGECHAT_API_KEYS, or a line of EDGECHAT_API_KEYS_FILE):\n${line}`);
  return 0;
}
