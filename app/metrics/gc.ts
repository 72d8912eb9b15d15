// Garbage collection as far as Bun lets a program see it. JSC reports no GC events to JavaScript
// (no PerformanceObserver "gc" entries, no hooks, no pause times), so:
// - a collection is observed when a sentinel object, garbage from birth, is finalized: the
//   FinalizationRegistry callback runs after the collection that freed it, and re-arms;
// - its pause is estimated from a probe timer: in each 20 ms period in which a collection was
//   observed, the probe's lateness (how long the JS thread did not get to it), but never more
//   than the CPU time the whole process used in that period. A collection is work: a stall the
//   process spent without CPU (descheduled on a shared CPU, throttled, waiting on a synchronous
//   syscall) is not a pause of the collector, and shows only in bun_event_loop_delay_seconds.
//   What remains an overestimate: other JS work in the same period, and collector threads' CPU
//   that did not stop the JS thread. sidecar/README.md has how close this is.
import { Counter, Gauge, Summary, type Registry } from "./prom.ts";

const PROBE_MS = 20;

export function gcMetrics(registry: Registry): { stop(): void } {
  const pauses = new Summary({
    name: "bun_gc_pause_seconds",
    help: "Estimated garbage collection pause: in each 20 ms period in which a collection was observed, the event loop's stall, at most the CPU time the process used in the period.",
    percentiles: [0, 0.25, 0.5, 0.75, 1],
    maxAgeSeconds: 600,
    ageBuckets: 5,
    registers: [registry],
  });
  const collections = new Counter({
    name: "bun_gc_collections_total",
    help: "Garbage collections observed through a finalized sentinel.",
    registers: [registry],
  });
  const last = new Gauge({ name: "bun_gc_last_time_seconds", help: "Unix time of the last observed garbage collection.", registers: [registry] });

  // The finalizer only counts; the probe reports, at most once per probe period. A busy server
  // collects its young generation hundreds of times a second, and a summary observation per
  // collection (a t-digest insert in each age bucket) cost more than a tenth of its CPU (measured).
  let worst = 0;
  let collected = 0;
  let due = performance.now() + PROBE_MS;
  let cpuSeen = cpuMs();
  const probe = setInterval(() => {
    const now = performance.now();
    const cpu = cpuMs();
    worst = Math.max(worst, pauseEstimateMs(now - due, cpu - cpuSeen));
    cpuSeen = cpu;
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

/** CPU time of the whole process (every thread: the collector's helpers too), in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** A period's stall, bounded by the CPU the process used in it: a pause without work is no GC. */
export function pauseEstimateMs(stallMs: number, cpuMs: number): number {
  return Math.max(0, Math.min(stallMs, cpuMs));
}
