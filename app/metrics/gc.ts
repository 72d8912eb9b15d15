// Garbage collection as far as Bun lets a program see it. JSC reports no GC events to JavaScript
// (no PerformanceObserver "gc" entries, no hooks), so:
// - a collection is observed when a sentinel object, garbage from birth, is finalized: the
//   FinalizationRegistry callback runs after the collection that freed it, and re-arms;
// - its pause is estimated as the longest lateness of a probe timer since the previous collection.
//   Collections that fall in one probe period count as one observation.
//   That catches stop-the-world work on the JS thread that overlapped a probe; it also includes
//   any other stall in the window. sidecar/README.md explains why this is the honest counterpart.
import { Counter, Gauge, Summary, type Registry } from "./prom.ts";

const PROBE_MS = 20;

export function gcMetrics(registry: Registry): { stop(): void } {
  const pauses = new Summary({
    name: "bun_gc_pause_seconds",
    help: "Estimated garbage collection pause: the longest event-loop stall in each 20 ms period in which at least one collection was observed.",
    percentiles: [0, 0.25, 0.5, 0.75, 1],
    maxAgeSeconds: 600,
    ageBuckets: 5,
    registers: [registry],
  });
  const collections = new Counter({ name: "bun_gc_collections_total", help: "Garbage collections observed through a finalized sentinel.", registers: [registry] });
  const last = new Gauge({ name: "bun_gc_last_time_seconds", help: "Unix time of the last observed garbage collection.", registers: [registry] });

  // The finalizer only counts; the probe reports, at most once per probe period. A busy server
  // collects its young generation hundreds of times a second, and a summary observation per
  // collection (a t-digest insert in each age bucket) cost more than a tenth of its CPU (measured).
  let worst = 0;
  let collected = 0;
  let due = performance.now() + PROBE_MS;
  const probe = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - due);
    due = now + PROBE_MS;
    if (collected === 0) return;
    pauses.observe(worst / 1000);
    collections.inc(collected);
    last.set(Date.now() / 1000);
    collected = 0;
    worst = 0;
  }, PROBE_MS);
  probe.unref?.();

  let stopped = false;
  const finalizer = new FinalizationRegistry<number>(() => {
    if (stopped) return;
    collected++;
    arm();
  });
  const arm = () => finalizer.register({}, 0);
  arm();
  return {
    stop() {
      stopped = true;
      clearInterval(probe);
    },
  };
}
