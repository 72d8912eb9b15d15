// The sidecar's own series, served next to the translated ones so that a dead or misbehaving target
// shows up as data rather than as a silent gap.
import type { MetricFamily } from "./exposition.ts";
import type { ScrapeResult } from "./scrape.ts";

// Listed up front so every reason has a series from the first scrape on: rate() and increase() only
// see an error once a series with an earlier sample exists.
const REASONS = ["timeout", "too_large", "too_many_series", "http_status", "connection"] as const;

export class SelfMetrics {
  private up = 0;
  private lastDuration: number | undefined;
  private scrapes = 0;
  private badLines = 0;
  private lastSuccess = 0;
  private readonly errors = new Map<string, number>(REASONS.map((r) => [r, 0]));

  /** now() in milliseconds; injectable so tests need no clock. */
  constructor(private readonly now: () => number = Date.now) {}

  record(result: ScrapeResult): void {
    this.scrapes++;
    this.lastDuration = result.durationSeconds;
    this.badLines += result.badLines;
    this.up = result.ok ? 1 : 0;
    if (result.ok) {
      this.lastSuccess = this.now() / 1000;
    } else {
      const reason = result.reason ?? "other";
      this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    }
  }

  families(): MetricFamily[] {
    const one = (name: string, value: number) => [{ name, labels: {}, value }];
    return [
      {
        name: "edgechat_sidecar_target_up",
        type: "gauge",
        help: "1 if the last scrape of the edgechat server succeeded, else 0.",
        samples: one("edgechat_sidecar_target_up", this.up),
      },
      {
        name: "edgechat_sidecar_scrape_duration_seconds",
        type: "gauge",
        help: "Duration of the last scrape of the edgechat server.",
        // No sample before the first scrape: a 0 would read as a very fast scrape.
        samples: this.lastDuration === undefined ? [] : one("edgechat_sidecar_scrape_duration_seconds", this.lastDuration),
      },
      {
        name: "edgechat_sidecar_scrapes_total",
        type: "counter",
        help: "Scrapes of the edgechat server attempted.",
        samples: one("edgechat_sidecar_scrapes_total", this.scrapes),
      },
      {
        name: "edgechat_sidecar_scrape_errors_total",
        type: "counter",
        help: "Failed scrapes of the edgechat server, by reason.",
        samples: [...this.errors].map(([reason, value]) => ({ name: "edgechat_sidecar_scrape_errors_total", labels: { reason }, value })),
      },
      {
        name: "edgechat_sidecar_bad_lines_total",
        type: "counter",
        help: "Exposition lines from the edgechat server skipped as unparsable.",
        samples: one("edgechat_sidecar_bad_lines_total", this.badLines),
      },
      {
        name: "edgechat_sidecar_last_success_timestamp_seconds",
        type: "gauge",
        // 0 until the first success, so time() minus it is huge (and alerts) rather than absent.
        help: "Unix time of the last successful scrape of the edgechat server, 0 if none yet.",
        samples: one("edgechat_sidecar_last_success_timestamp_seconds", this.lastSuccess),
      },
    ];
  }
}
