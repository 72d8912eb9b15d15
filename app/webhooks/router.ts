// The core's event sink (core/webhook-events.ts): each event, one delivery per endpoint that wants
// it, with the body every try sends: the Standard Webhooks envelope {type, timestamp, data}.
import type { EventSink, WebhookEvent } from "../core/webhook-events.ts";
import type { OutboxRow } from "../engine/engine.ts";
import type { Endpoint, WebhookEndpoints } from "./endpoints.ts";

export function webhookRouter(endpoints: readonly Endpoint[] | WebhookEndpoints): EventSink {
  const list = () => ("list" in endpoints ? endpoints.list() : endpoints);
  return {
    wants: (type) => list().some((e) => e.events.has(type)),
    rows(type: WebhookEvent, data: Record<string, unknown>): OutboxRow[] {
      const to = list().filter((e) => e.events.has(type));
      if (to.length === 0) return [];
      // One id per event, the same for every endpoint and every try: receivers dedupe by it.
      const eventId = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
      const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
      return to.map((e) => ({ eventId, endpoint: e.id, type, body }));
    },
  };
}
