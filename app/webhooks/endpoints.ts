// The webhook endpoints, from EDGECHAT_WEBHOOKS_FILE (JSON):
//   {"endpoints": [{"id": "crm", "url": "https://crm.example/chat", "secret": "whsec_...",
//                   "events": ["message.created", "member.banned"]}]}
// "events" may be ["*"]. Checked at start: a bad file stops the server, saying what is wrong where.
import { WEBHOOK_EVENTS, type WebhookEvent } from "../core/webhook-events.ts";
import { secretKey } from "./signing.ts";

export interface Endpoint {
  id: string;
  url: string;
  key: Buffer;
  events: ReadonlySet<WebhookEvent>;
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function parseEndpoints(text: string, source: string): Endpoint[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not JSON (${(err as Error).message})`);
  }
  const list = (doc as { endpoints?: unknown })?.endpoints;
  if (!Array.isArray(list)) throw new Error(`${source}: expected {"endpoints": [...]}`);
  const seen = new Set<string>();
  return list.map((e: Record<string, unknown>, i) => {
    const where = `${source}, endpoint ${i + 1}`;
    if (typeof e?.id !== "string" || !ID.test(e.id)) throw new Error(`${where}: "id" must be 1 to 64 of A-Z a-z 0-9 _ . -`);
    if (seen.has(e.id)) throw new Error(`${where}: a second endpoint with id "${e.id}"`);
    seen.add(e.id);
    let url: URL;
    try {
      url = new URL(String(e.url));
    } catch {
      throw new Error(`${where}: "url" is not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`${where}: "url" must be http or https`);
    let key: Buffer;
    try {
      key = secretKey(String(e.secret ?? ""));
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    const events = Array.isArray(e.events) ? e.events.map(String) : [];
    if (events.length === 0) throw new Error(`${where}: "events" must list the events it wants (or ["*"]): ${WEBHOOK_EVENTS.join(", ")}`);
    const unknown = events.filter((x) => x !== "*" && !(WEBHOOK_EVENTS as readonly string[]).includes(x));
    if (unknown.length) throw new Error(`${where}: unknown event ${unknown.join(", ")}: the events are ${WEBHOOK_EVENTS.join(", ")}`);
    return { id: e.id, url: url.href, key, events: new Set(events.includes("*") ? WEBHOOK_EVENTS : (events as WebhookEvent[])) };
  });
}
