// `edgechat metrics [url]`: a short human summary of a sidecar's output (like the old
// fetch_go_metrics tool). Two scrapes a second apart give the rates.
import { parseText, type MetricFamily } from "../../sidecar/exposition.ts";

type Series = Map<string, number>; // "name" + labels without identity -> value, per pod

async function scrapeByPod(url: string): Promise<Map<string, Series>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  const pods = new Map<string, Series>();
  for (const f of parseText(await res.text()) as MetricFamily[]) {
    for (const s of f.samples) {
      const pod = s.labels.kubernetes_pod_name ?? "-";
      if (!pods.has(pod)) pods.set(pod, new Map());
      const series = pods.get(pod)!;
      const key = s.labels.quantile ? `${s.name}{quantile=${s.labels.quantile}}` : s.name;
      series.set(key, (series.get(key) ?? 0) + s.value);
    }
  }
  return pods;
}

const mb = (v: number | undefined) => (v === undefined ? "-" : `${(v / 1048576).toFixed(1)} MiB`);
const ms = (v: number | undefined) => (v === undefined ? "-" : `${(v * 1000).toFixed(2)} ms`);
const num = (v: number | undefined, digits = 0) => (v === undefined ? "-" : v.toFixed(digits));

export async function metricsCommand(args: string[], out: (line: string) => void = console.log): Promise<number> {
  const url = args[0] ?? "http://127.0.0.1:9091/metrics";
  const interval = 1;
  const before = await scrapeByPod(url);
  await Bun.sleep(interval * 1000);
  const after = await scrapeByPod(url);
  for (const [pod, s] of after) {
    const prev = before.get(pod);
    const rate = (name: string) => (prev?.has(name) && s.has(name) ? (s.get(name)! - prev.get(name)!) / interval : undefined);
    const g = (name: string) => s.get(name);
    out(`${pod}  (${g("edgechat_sidecar_target_up") === 0 ? "server DOWN" : "server up"})`);
    out(`  goroutines      ${num(g("go_goroutines"))}   threads ${num(g("go_threads"))}`);
    out(
      `  GC              ${num(g("go_gc_duration_seconds_count"))} observed, pause p50 ${ms(g("go_gc_duration_seconds{quantile=0.5}"))}, max ${ms(g("go_gc_duration_seconds{quantile=1}"))}`,
    );
    out(
      `  heap            ${mb(g("go_memstats_heap_alloc_bytes"))} in use of ${mb(g("go_memstats_heap_sys_bytes"))}, ${num(g("go_memstats_heap_objects"))} objects`,
    );
    out(`  sys (RSS)       ${mb(g("go_memstats_sys_bytes"))}   next GC ${mb(g("go_memstats_next_gc_bytes"))}`);
    out(`  sessions        ${num(g("edgechat_sessions_open"))}   rooms ${num(g("edgechat_rooms"))}`);
    out(`  messages/s      ${num(rate("edgechat_messages_accepted_total"), 1)} accepted, ${num(rate("edgechat_messages_delivered_total"), 1)} delivered`);
  }
  return after.size > 0 ? 0 : 1;
}
