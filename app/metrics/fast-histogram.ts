// A histogram whose observe() is a bucket search on a short array and two additions. prom-client's
// observe() validates and hashes its labels on every call; edgechat observes the delivery latency
// once per delivery and the handling time once per call, tens of thousands of times a second, where
// that cost showed as 5-13 % of the server's throughput (fan-out benchmark, with and without the
// per-delivery metrics). Labelled series are children taken once (per method, say) and kept. It
// registers like any prom-client metric and is exposed in the same text.
import type { Metric, Registry } from "prom-client";

type Labels = Record<string, string>;

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    if (i < b.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

export class FastHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly children = new Map<string, HistogramChild>();
  private readonly unlabelled: HistogramChild | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
    private readonly labelNames: readonly string[] = [],
  ) {
    if (labelNames.length === 0) this.unlabelled = this.child({});
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of `labels` (created at zero if new): keep it, and observe on it. */
  child(labels: Labels): HistogramChild {
    const key = this.labelNames.map((n) => labels[n]).join("\0");
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = new HistogramChild(labels, this.buckets)));
    return c;
  }

  observe(value: number): void {
    (this.unlabelled ?? this.child({})).observe(value);
  }

  /** What prom-client's registry asks every metric for: its series, buckets cumulative, "le" first as prom-client prints it. */
  async get() {
    const bucket = `${this.name}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const c of this.children.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => values.push({ labels: { le, ...c.labels }, value: (acc += c.counts[i]), metricName: bucket }));
      values.push(
        { labels: { le: "+Inf", ...c.labels }, value: c.count, metricName: bucket },
        { labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` },
        { labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const c of this.children.values()) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}
