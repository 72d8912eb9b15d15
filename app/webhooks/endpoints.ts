// The webhook endpoints, from EDGECHAT_WEBHOOKS_FILE (JSON):
//   {"endpoints": [{"id": "crm", "url": "https://crm.example/chat", "secret": "whsec_...",
//                   "events": ["message.created", "member.banned"]}]}
// "events" may be ["*"]. Checked at start: a bad file stops the server, saying what is wrong where.
import { WEBHOOK_EVENTS, type WebhookEvent } from "../core/webhook-events.ts";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AccessStore } from "../engine/engine.ts";
import { newSecret, secretKey } from "./signing.ts";

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
    const endpoint = parseEndpoint(e, where);
    if (seen.has(endpoint.id)) throw new Error(`${where}: a second endpoint with id "${endpoint.id}"`);
    seen.add(endpoint.id);
    return endpoint;
  });
}

/** One endpoint's fields (from the file, or made through the server API); throws, saying what is wrong. */
export function parseEndpoint(e: Record<string, unknown>, where: string): Endpoint {
  if (typeof e?.id !== "string" || !ID.test(e.id)) throw new Error(`${where}: "id" must be 1 to 64 of A-Z a-z 0-9 _ . -`);
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
}

/**
 * Every endpoint: the file's, fixed, and those made through the server API, which every instance
 * follows (the access store's documents). What the router, the dispatcher and the server API read.
 */
export class WebhookEndpoints {
  private api = new Map<string, Endpoint>();
  /** list(), made once per change: every message asks it. */
  private all: Endpoint[];
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly fromFile: readonly Endpoint[],
    private readonly docs?: Pick<AccessStore, "webhookEndpoints" | "watchWebhookEndpoints" | "setWebhookEndpoint">,
  ) {
    this.all = [...fromFile];
    docs?.watchWebhookEndpoints(() => this.reload());
  }

  /** Reads the server API's endpoints (once the access store is loaded). */
  reload(): void {
    const api = new Map<string, Endpoint>();
    for (const [id, value] of this.docs?.webhookEndpoints() ?? []) {
      try {
        api.set(id, parseEndpoint({ id, ...(JSON.parse(value) as Record<string, unknown>) }, `webhook endpoint "${id}"`));
      } catch {
        // Written by this code through the server API, which checked it: nothing to skip in practice.
      }
    }
    this.api = api;
    this.all = [...this.fromFile, ...[...api.values()].filter((e) => !this.isFromFile(e.id))];
    for (const l of this.listeners) l();
  }

  list(): readonly Endpoint[] {
    return this.all;
  }

  get(id: string): Endpoint | undefined {
    return this.fromFile.find((e) => e.id === id) ?? this.api.get(id);
  }

  isFromFile(id: string): boolean {
    return this.fromFile.some((e) => e.id === id);
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /**
   * Makes an endpoint (the server API), with a new secret, which it returns: shown once, never
   * again. Refused for an id taken (by the file, or by another endpoint) and for bad fields.
   */
  async create(id: string, url: string, events: string[]): Promise<{ endpoint: Endpoint; secret: string }> {
    const secret = newSecret();
    let endpoint: Endpoint;
    try {
      endpoint = parseEndpoint({ id, url, secret, events }, "the endpoint");
    } catch (err) {
      throw new ConnectError((err as Error).message.replace("the endpoint: ", ""), Code.InvalidArgument);
    }
    const taken = () => new ConnectError(`a webhook endpoint "${id}" exists already`, Code.AlreadyExists);
    if (this.get(id) || !this.docs) throw taken();
    if (!(await this.docs.setWebhookEndpoint(id, JSON.stringify({ url, secret, events })))) throw taken();
    this.reload();
    return { endpoint, secret };
  }

  /** Deletes an endpoint made through the server API; what is waiting for it becomes dead letters when tried. */
  async delete(id: string): Promise<void> {
    if (this.isFromFile(id)) throw new ConnectError(`webhook endpoint "${id}" is in EDGECHAT_WEBHOOKS_FILE: change the file instead`, Code.FailedPrecondition);
    if (!this.docs || !(await this.docs.setWebhookEndpoint(id, undefined))) throw new ConnectError(`no webhook endpoint "${id}"`, Code.NotFound);
    this.reload();
  }
}
