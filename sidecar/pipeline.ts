// One scrape of the server, end to end: scrape -> translate -> relabel. Concurrent requests share
// one scrape, so a burst of scrapers costs the server one.
import type { MetricFamily } from "./exposition.ts";
import type { Labels } from "./relabel.ts";
import { scrape } from "./scrape.ts";
import type { SelfMetrics } from "./self-metrics.ts";
import { translate, type Identity } from "./translate.ts";

export interface PipelineOptions {
  target: string;
  timeoutMs: number;
  maxBytes: number;
  maxSeries?: number;
  maxLabels?: number;
  identity: Identity;
  relabel: (labels: Labels) => Labels | undefined;
  self: SelfMetrics;
  /** Called when the target's state changes (up <-> down), with the error if down. */
  onTargetChange?: (up: boolean, error?: string) => void;
}

export function createPipeline(opts: PipelineOptions): () => Promise<MetricFamily[]> {
  let inflight: Promise<MetricFamily[]> | undefined;
  let wasUp: boolean | undefined;
  const run = async () => {
    const result = await scrape(opts.target, { timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes, maxSeries: opts.maxSeries, maxLabels: opts.maxLabels });
    opts.self.record(result);
    if (result.ok !== wasUp) opts.onTargetChange?.(result.ok, result.error);
    wasUp = result.ok;
    // A failed scrape serves no server series at all: stale numbers would look alive.
    const families = translate([...(result.ok ? result.families : []), ...opts.self.families()], opts.identity);
    return relabelFamilies(families, opts.relabel);
  };
  return () => {
    inflight ??= run().finally(() => (inflight = undefined));
    return inflight;
  };
}

/** Applies relabeling to every sample; a renamed sample moves to the family of its new name. */
export function relabelFamilies(families: MetricFamily[], relabel: (labels: Labels) => Labels | undefined): MetricFamily[] {
  const out = new Map<string, MetricFamily>();
  for (const f of families) {
    for (const s of f.samples) {
      const labels = relabel({ ...s.labels, __name__: s.name });
      if (!labels) continue;
      const { __name__: name = s.name, ...rest } = labels;
      const suffix = s.name.slice(f.name.length);
      const familyName = name === s.name ? f.name : suffix && name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      let target = out.get(familyName);
      if (!target) out.set(familyName, (target = { ...f, name: familyName, samples: [] }));
      target.samples.push({ ...s, name, labels: rest });
    }
  }
  return [...out.values()];
}
