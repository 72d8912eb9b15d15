// What the Bun runtime really measures of itself: JavaScriptCore's heap, mimalloc (Bun's native
// allocator), the process and the kernel's view (/proc/self). Raw names here; the sidecar maps them
// onto the Go client's schema (sidecar/README.md has the table and the reasons).
import { heapStats } from "bun:jsc";
import { readdirSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Counter, Gauge, type Registry } from "./prom.ts";

interface MimallocStat {
  total: number;
  peak: number;
  current: number;
}
interface Mimalloc {
  committed: MimallocStat;
  page_committed: MimallocStat;
  malloc_normal: MimallocStat;
  malloc_huge: MimallocStat;
  malloc_requested: number;
  malloc_bins: MimallocStat[];
  threads: MimallocStat;
}

interface Snapshot {
  heap: ReturnType<typeof heapStats>;
  mimalloc?: Mimalloc;
  memory: NodeJS.MemoryUsage;
  status: Record<string, number>;
}

/** heapStats() walks the heap (milliseconds on a big one): one snapshot serves a whole scrape. */
function snapshots(): () => Snapshot {
  let cached: Snapshot | undefined;
  let at = 0;
  return () => {
    const now = performance.now();
    if (!cached || now - at > 1000) {
      const heap = heapStats();
      cached = { heap, mimalloc: (heap as { mimalloc?: Mimalloc }).mimalloc, memory: process.memoryUsage(), status: procStatus() };
      at = now;
    }
    return cached;
  };
}

/** /proc/self/status, numbers only ("VmRSS: 1234 kB" -> VmRSS: 1263616). */
function procStatus(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync("/proc/self/status", "utf8").split("\n")) {
      const m = /^(\w+):\s+(\d+)(?: kB)?$/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * (line.endsWith("kB") ? 1024 : 1);
    }
  } catch {
    // not Linux: the /proc gauges stay absent
  }
  return out;
}

export function runtimeMetrics(registry: Registry): { stop(): void } {
  const snap = snapshots();
  const gauge = (name: string, help: string, read: (s: Snapshot) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read(snap());
        if (v !== undefined && Number.isFinite(v)) this.set(v);
      },
    });
  // A counter read from a cumulative source: add what it grew by since the last scrape.
  const counter = (name: string, help: string, read: (s: Snapshot) => number | undefined) => {
    let seen = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read(snap());
        if (v === undefined || v < seen) return;
        this.inc(v - seen);
        seen = v;
      },
    });
  };

  new Gauge({ name: "bun_info", help: "Bun version and revision of this process.", labelNames: ["version", "revision"], registers: [registry] }).set(
    { version: Bun.version, revision: Bun.revision },
    1,
  );

  gauge("bun_jsc_heap_size_bytes", "Bytes of live objects in the JavaScriptCore heap.", (s) => s.heap.heapSize);
  gauge("bun_jsc_heap_capacity_bytes", "Bytes the JavaScriptCore heap holds from the allocator.", (s) => s.heap.heapCapacity);
  gauge("bun_jsc_extra_memory_bytes", "Bytes outside the heap owned by heap objects (buffers, external strings).", (s) => s.heap.extraMemorySize);
  gauge("bun_jsc_objects", "Live objects in the JavaScriptCore heap.", (s) => s.heap.objectCount);
  gauge("bun_jsc_protected_objects", "Objects protected from collection by the runtime.", (s) => s.heap.protectedObjectCount);
  gauge("bun_array_buffers_bytes", "Bytes of ArrayBuffer and Buffer backing stores.", (s) => s.memory.arrayBuffers);
  gauge("bun_external_memory_bytes", "Bytes of native memory bound to JavaScript objects.", (s) => s.memory.external);

  const mi = (f: (m: Mimalloc) => number) => (s: Snapshot) => (s.mimalloc ? f(s.mimalloc) : undefined);
  gauge(
    "bun_mimalloc_in_use_bytes",
    "Bytes of native allocations live in mimalloc.",
    mi((m) => m.malloc_normal.current + m.malloc_huge.current),
  );
  gauge(
    "bun_mimalloc_committed_bytes",
    "Bytes mimalloc has committed from the OS.",
    mi((m) => m.committed.current),
  );
  gauge(
    "bun_mimalloc_committed_peak_bytes",
    "Most bytes mimalloc ever had committed.",
    mi((m) => m.committed.peak),
  );
  gauge(
    "bun_mimalloc_page_committed_bytes",
    "Bytes committed for mimalloc pages (its spans of same-size blocks).",
    mi((m) => m.page_committed.current),
  );
  gauge(
    "bun_mimalloc_page_committed_peak_bytes",
    "Most bytes ever committed for mimalloc pages.",
    mi((m) => m.page_committed.peak),
  );
  // Counted over mimalloc's size classes, where it tracks both ends of a block's life; huge blocks
  // report allocations but no frees, so they are left out of both.
  counter(
    "bun_mimalloc_allocations_total",
    "Native allocations made by mimalloc (size-class blocks).",
    mi((m) => sumBins(m, "total")),
  );
  counter(
    "bun_mimalloc_frees_total",
    "Native allocations freed by mimalloc (size-class blocks).",
    mi((m) => sumBins(m, "total") - sumBins(m, "current")),
  );
  counter(
    "bun_mimalloc_allocated_bytes_total",
    "Bytes requested from mimalloc since start.",
    mi((m) => m.malloc_requested),
  );

  // Resident memory split into parts that add up to it exactly (the sidecar maps them onto Go's
  // *_sys_bytes, whose sum is sys_bytes).
  const part = (name: keyof ResidentParts, help: string) => gauge(`bun_resident_${name}_bytes`, help, (s) => residentParts(s)?.[name]);
  part("js_heap", "Resident memory of the JavaScriptCore heap's own blocks (its capacity less the extra memory below).");
  part("buffers", "Resident memory outside the JS heap owned by JS objects: buffers, external strings.");
  part("native", "Resident memory of other live native allocations (mimalloc's live blocks besides the JS heap's).");
  part("stack", "Resident memory of the main thread's stack.");
  part("other", "The rest of resident memory: the Bun binary and libraries, JIT code, threads' stacks, allocator slack.");

  gauge("bun_threads", "OS threads of the process.", (s) => s.status.Threads);
  gauge("bun_stack_bytes", "Bytes of the main thread's stack (VmStk).", (s) => s.status.VmStk);
  gauge("bun_page_tables_bytes", "Bytes of kernel page tables mapping the process (VmPTE).", (s) => s.status.VmPTE);
  gauge("bun_rss_anon_bytes", "Resident anonymous memory (RssAnon).", (s) => s.status.RssAnon);
  gauge("bun_rss_file_bytes", "Resident file-backed memory: the Bun binary and libraries (RssFile).", (s) => s.status.RssFile);

  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  new Gauge({
    name: "bun_event_loop_delay_seconds",
    // A gauge per percentile rather than a summary: the window is "since the last scrape".
    help: "Event loop delay over the last scrape interval, by percentile (100 is the maximum).",
    labelNames: ["percentile"],
    registers: [registry],
    collect() {
      for (const p of [50, 90, 99]) this.set({ percentile: String(p) }, loop.percentile(p) / 1e9);
      this.set({ percentile: "100" }, loop.max / 1e9);
      loop.reset();
    },
  });

  processMetrics(registry, snap);
  return { stop: () => loop.disable() };
}

export interface ResidentParts {
  total: number;
  js_heap: number;
  buffers: number;
  native: number;
  stack: number;
  other: number;
}

/**
 * Resident memory (VmRSS) in parts that are each really resident and add up to it exactly. The
 * allocators' own figures are not resident memory (mimalloc's "committed" counts address space it
 * may never have touched: about 1 GB on a 110 MB process), so each part is what its source says,
 * capped by what is left of the resident total; "other" is the remainder.
 */
export function residentParts(s: Pick<Snapshot, "heap" | "mimalloc" | "status">): ResidentParts | undefined {
  const total = s.status.VmRSS;
  if (total === undefined) return undefined;
  let left = total;
  const take = (bytes: number) => {
    const v = Math.max(0, Math.min(bytes, left));
    left -= v;
    return v;
  };
  // Measured on Bun 1.4: JSC's heap capacity includes its extra memory (buffers and external
  // strings it was told about), and both are mimalloc blocks. Each is counted once here.
  const js_heap = take(s.heap.heapCapacity - s.heap.extraMemorySize);
  const buffers = take(s.heap.extraMemorySize);
  const live = s.mimalloc ? s.mimalloc.malloc_normal.current + s.mimalloc.malloc_huge.current : 0;
  const native = take(live - s.heap.heapCapacity);
  const stack = take(s.status.VmStk ?? 0);
  return { total, js_heap, buffers, native, stack, other: left };
}

function sumBins(m: Mimalloc, key: "total" | "current"): number {
  let n = 0;
  for (const b of m.malloc_bins) n += b[key];
  return n;
}

/** The process_* series of the Go client's process collector, from the same /proc files. */
function processMetrics(registry: Registry, snap: () => Snapshot): void {
  const r = [registry];
  const startTime = Math.round(Date.now() / 1000 - process.uptime());
  new Gauge({ name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", registers: r }).set(startTime);
  let cpuSeen = 0;
  new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers: r,
    collect() {
      const u = process.cpuUsage();
      const total = (u.user + u.system) / 1e6;
      if (total > cpuSeen) this.inc(total - cpuSeen);
      cpuSeen = Math.max(cpuSeen, total);
    },
  });
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers: r,
    collect() {
      const v = snap().status.VmRSS;
      if (v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes.",
    registers: r,
    collect() {
      const v = snap().status.VmSize;
      if (v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "process_open_fds",
    help: "Number of open file descriptors.",
    registers: r,
    collect() {
      try {
        this.set(readdirSync("/proc/self/fd").length);
      } catch {
        // not Linux
      }
    },
  });
  new Gauge({
    name: "process_max_fds",
    help: "Maximum number of open file descriptors.",
    registers: r,
    collect() {
      try {
        const m = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"));
        if (m) this.set(Number(m[1]));
      } catch {
        // not Linux
      }
    },
  });
}
