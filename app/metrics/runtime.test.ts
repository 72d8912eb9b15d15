// The runtime's memory as the dashboards will read it: parts that are really resident and add up
// to the resident total, on synthetic figures and on this very process through the sidecar's
// translation.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseText } from "../../sidecar/exposition.ts";
import { translate } from "../../sidecar/translate.ts";
import { Registry } from "./prom.ts";
import { residentParts, runtimeMetrics } from "./runtime.ts";

const MB = 1 << 20;
const mimalloc = (live: number) => ({ malloc_normal: { current: live, peak: 0, total: 0 }, malloc_huge: { current: 0, peak: 0, total: 0 } });

test("each part is what its source says, capped by what is left of the resident total", () => {
  // mimalloc's committed gigabyte is nowhere: only live blocks count.
  const parts = residentParts({
    heap: { heapCapacity: 40 * MB, extraMemorySize: 4 * MB } as never,
    mimalloc: { ...mimalloc(70 * MB), committed: { current: 1024 * MB } } as never,
    status: { VmRSS: 110 * MB, VmStk: 132 * 1024 },
  })!;
  expect(parts).toEqual({ total: 110 * MB, js_heap: 36 * MB, buffers: 4 * MB, native: 30 * MB, stack: 132 * 1024, other: 40 * MB - 132 * 1024 });

  // Sources that claim more than is resident are cut to it; the identity holds all the same.
  const over = residentParts({
    heap: { heapCapacity: 300 * MB, extraMemorySize: 0 } as never,
    mimalloc: mimalloc(500 * MB) as never,
    status: { VmRSS: 100 * MB, VmStk: 132 * 1024 },
  })!;
  expect(over).toEqual({ total: 100 * MB, js_heap: 100 * MB, buffers: 0, native: 0, stack: 0, other: 0 });
  expect(residentParts({ heap: {} as never, status: {} })).toBeUndefined();
});

test.skipIf(process.platform !== "linux")("this process: go_memstats_sys_bytes is the sum of the seven parts and no more than its RSS", async () => {
  const registry = new Registry();
  const runtime = runtimeMetrics(registry);
  try {
    const keep = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    const families = translate(parseText(await registry.metrics()), { namespace: "t", pod: "t", region: "t", machine: "t" });
    const rssAfter = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
    const value = (name: string) => families.find((f) => f.name === name)?.samples[0].value;
    const parts = ["heap", "stack", "mspan", "mcache", "buck_hash", "gc", "other"].map((p) => value(`go_memstats_${p}_sys_bytes`)!);
    expect(parts.every((v) => v >= 0)).toBe(true);
    const sys = value("go_memstats_sys_bytes")!;
    expect(sys).toBe(parts.reduce((a, b) => a + b, 0));
    // Read a moment before rssAfter; the heap only grew meanwhile, so a little slack suffices.
    expect(sys).toBeLessThanOrEqual(rssAfter * 1.05);
    expect(value("go_memstats_heap_sys_bytes")!).toBeGreaterThan(keep.length * 16);
  } finally {
    runtime.stop();
  }
});
