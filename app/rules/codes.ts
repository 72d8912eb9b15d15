// Connect's codes as the wire spells them ("invalid_argument"), both ways: in error events, the
// Connect protocol's JSON errors, WebSocket close reasons, the web page's /typing answers and the
// CLI's messages. Our own, not connect-es's codeToString, which it marks internal.
import { Code } from "@connectrpc/connect";

const NAMES = new Map<Code, string>();
const CODES = new Map<string, Code>();
for (const [key, value] of Object.entries(Code)) {
  if (typeof value !== "number") continue;
  const name = key.replace(/[A-Z]/g, (ch, i) => (i ? "_" : "") + ch.toLowerCase());
  NAMES.set(value, name);
  CODES.set(name, value);
}

/** "invalid_argument" for Code.InvalidArgument; "unknown" for a number that is no code. */
export function codeName(code: Code): string {
  return NAMES.get(code) ?? "unknown";
}

/** The code a wire name spells, or undefined. */
export function codeFromName(name: string): Code | undefined {
  return CODES.get(name);
}
