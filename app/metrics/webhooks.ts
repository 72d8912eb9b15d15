// The webhooks' metrics: deliveries and failed tries counted as they happen; what waits (retrying,
// dead letters, and the lag, the age of the oldest delivery not yet made) read from the outbox at
// scrape time, so that they are right whichever instance made them.
import { Counter, Gauge, type Registry } from "./prom.ts";
import type { WebhookOutbox } from "../engine/engine.ts";
import type { WebhookCounts } from "../webhooks/dispatcher.ts";
import type { FilterOutcome } from "../webhooks/filter.ts";

export function webhookMetrics(registry: Registry, outbox: WebhookOutbox, endpointIds: () => string[]): WebhookCounts {
  const r = [registry];
  const delivered = new Counter({
    name: "edgechat_webhook_delivered_total",
    help: "Webhook deliveries answered with a 2xx.",
    labelNames: ["endpoint"],
    registers: r,
  });
  const failed = new Counter({
    name: "edgechat_webhook_failed_total",
    help: "Webhook tries that failed (another status, no answer, no connection).",
    labelNames: ["endpoint"],
    registers: r,
  });
  for (const endpoint of endpointIds()) {
    delivered.inc({ endpoint }, 0);
    failed.inc({ endpoint }, 0);
  }
  const read = () => outbox.stats();
  const gauge = (name: string, help: string, value: (s: Awaited<ReturnType<typeof read>> extends Map<string, infer V> ? V : never) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["endpoint"],
      registers: r,
      async collect() {
        const stats = await read();
        for (const endpoint of endpointIds()) {
          const s = stats.get(endpoint);
          this.set({ endpoint }, s ? value(s) : 0);
        }
      },
    });
  gauge("edgechat_webhook_retrying", "Webhook deliveries that failed and wait for their next try.", (s) => s.retrying);
  gauge("edgechat_webhook_dead", "Webhook deliveries that gave up (dead letters), until redelivered.", (s) => s.dead);
  gauge("edgechat_webhook_lag_seconds", "Age of the oldest webhook delivery not yet made (0: none waits).", (s) =>
    s.oldestMs === undefined ? 0 : (Date.now() - s.oldestMs) / 1000,
  );
  return { delivered: (endpoint) => delivered.inc({ endpoint }), failed: (endpoint) => failed.inc({ endpoint }) };
}

/** The message filter hook's answers, by outcome: accept, reject, rewrite, failed_open, failed_closed. */
export function filterMetrics(registry: Registry): (outcome: FilterOutcome) => void {
  const answers = new Counter({
    name: "edgechat_filter_total",
    help: "Messages and edits checked by the filter hook, by outcome.",
    labelNames: ["outcome"],
    registers: [registry],
  });
  for (const outcome of ["accept", "reject", "rewrite", "failed_open", "failed_closed"]) answers.inc({ outcome }, 0);
  return (outcome) => answers.inc({ outcome });
}
