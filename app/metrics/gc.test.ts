// The GC pause estimate against what it must not count: a stall of the event loop in which the
// process did no work (here a synchronous sleep, as a descheduled or throttled machine would be).
import { expect, test } from "bun:test";
import { gcMetrics, pauseEstimateMs } from "./gc.ts";
import { Registry } from "./prom.ts";

test("a stall is a pause only as far as the process worked during it", () => {
  expect(pauseEstimateMs(300, 2)).toBe(2);
  expect(pauseEstimateMs(3, 20)).toBe(3);
  expect(pauseEstimateMs(-1, 5)).toBe(0);
});

test("a collection next to a 300 ms idle stall is not reported as a 300 ms pause", async () => {
  const registry = new Registry();
  const gc = gcMetrics(registry);
  try {
    await Bun.sleep(50);
    Bun.gc(true);
    Bun.sleepSync(300); // the JS thread stalls, and the process uses no CPU meanwhile
    await Bun.sleep(100); // the finalizer runs, the probe reports the period
    const text = await registry.metrics();
    const count = Number(/^bun_gc_collections_total (\d+)/m.exec(text)?.[1]);
    const max = Number(/^bun_gc_pause_seconds\{quantile="1"\} (\S+)/m.exec(text)?.[1]);
    expect(count).toBeGreaterThan(0);
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThan(0.15);
  } finally {
    gc.stop();
  }
});
