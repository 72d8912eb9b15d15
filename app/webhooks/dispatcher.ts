// Delivers the outbox's webhooks: POSTs each due delivery to its endpoint, signed (signing.ts);
// a 2xx answer is delivered; anything else (another status, no answer within the timeout, no
// connection) is tried again after an exponential backoff with jitter, until a dead letter after
// `maxAttempts` tries. At least once: a delivery is removed only after its 2xx, so one whose answer
// was lost (a crash between) is sent again, with the same webhook-id for the receiver to dedupe.
import type { Delivery, WebhookOutbox } from "../engine/engine.ts";
import type { Logger } from "../log.ts";
import type { WebhookEndpoints } from "./endpoints.ts";
import { signedHeaders } from "./signing.ts";

export interface DispatchOptions {
  /** EDGECHAT_WEBHOOK_MAX_ATTEMPTS: tries before a dead letter. */
  maxAttempts: number;
  /** EDGECHAT_WEBHOOK_RETRY_MS: the wait after the first failed try; each next one doubles, up to an hour. */
  retryMs: number;
  /** EDGECHAT_WEBHOOK_TIMEOUT_MS: how long a receiver has to answer. */
  timeoutMs: number;
  /** Deliveries in flight at once. */
  concurrency?: number;
  /** How often the outbox is looked at for what is due. */
  pollMs?: number;
}

export interface WebhookCounts {
  delivered(endpoint: string): void;
  failed(endpoint: string): void;
}

const MAX_BACKOFF_MS = 3_600_000;

/** The wait before try `attempts + 1`: base x 2^(attempts - 1), capped, with half of it random (jitter). */
export function backoffMs(attempts: number, baseMs: number): number {
  const full = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempts - 1));
  return full / 2 + Math.random() * (full / 2);
}

export class WebhookDispatcher {
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private started = false;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly endpoints: WebhookEndpoints,
    private readonly opts: DispatchOptions,
    private readonly log: Logger,
    private readonly counts?: WebhookCounts,
  ) {}

  /**
   * Starts delivering once there is an endpoint (the file's, or one made through the server API
   * later), after the outbox's own start (NATS sets up its streams and consumers), and again for
   * each endpoint made after.
   */
  async start(): Promise<void> {
    this.endpoints.onChange(() => void this.begin());
    await this.begin();
  }

  private async begin(): Promise<void> {
    const ids = this.endpoints.list().map((e) => e.id);
    if (ids.length === 0 || this.stopped) return;
    // An ack wait well past the timeout: a delivery still being tried is not handed to another instance.
    // An outbox on a service that is not up yet (NATS) is tried again until it is.
    for (;;) {
      try {
        await this.outbox.start?.(ids, this.opts.timeoutMs + 30_000);
        break;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn("webhook outbox not ready; trying again", { err: (err as Error).message });
        await Bun.sleep(2000);
      }
    }
    if (this.started) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops taking deliveries and waits for those in flight (their outcome is recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.inFlight.values()]);
    this.outbox.close?.();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    const room = (this.opts.concurrency ?? 8) - this.inFlight.size;
    try {
      if (room > 0) {
        for (const d of await this.outbox.due(Date.now(), room + this.inFlight.size)) {
          const key = `${d.eventId}\n${d.endpoint}`;
          if (this.inFlight.has(key) || this.inFlight.size >= (this.opts.concurrency ?? 8)) continue;
          const run = this.deliver(d).finally(() => this.inFlight.delete(key));
          this.inFlight.set(key, run);
        }
      }
    } catch (err) {
      this.log.error("webhook outbox read failed", { err });
    }
    this.schedule(this.opts.pollMs ?? 250);
  }

  private async deliver(d: Delivery): Promise<void> {
    const endpoint = this.endpoints.get(d.endpoint);
    let error: string;
    if (!endpoint) {
      error = "the endpoint is no longer configured";
    } else {
      try {
        const res = await fetch(endpoint.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...signedHeaders(endpoint.key, d.eventId, Math.floor(Date.now() / 1000), d.body) },
          body: d.body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
          redirect: "manual",
        });
        await res.body?.cancel().catch(() => {});
        if (res.status >= 200 && res.status < 300) {
          await this.outbox.delivered(d);
          this.counts?.delivered(d.endpoint);
          return;
        }
        error = `HTTP ${res.status}`;
      } catch (err) {
        error = (err as Error).name === "TimeoutError" ? `no answer within ${this.opts.timeoutMs} ms` : String((err as Error).message ?? err);
      }
    }
    this.counts?.failed(d.endpoint);
    const attempts = d.attempts + 1;
    const dead = !endpoint || attempts >= this.opts.maxAttempts;
    const next = dead ? undefined : Date.now() + backoffMs(attempts, this.opts.retryMs);
    await this.outbox.failed(d, next, error).catch((err) => this.log.error("webhook outbox write failed", { err }));
    const fields = { endpoint: d.endpoint, type: d.type, id: d.eventId, attempts, error };
    if (dead) this.log.warn("webhook dead letter", fields);
    else this.log.info("webhook delivery failed; will try again", { ...fields, retryInMs: Math.round(next! - Date.now()) });
  }
}
