// The Go client's schema, as data: each go_* family, its type and client_golang's HELP, and the
// server series (or arithmetic on them) it is read from. sidecar/README.md explains each choice.
import type { MetricType } from "./exposition.ts";

/**
 * A source: one server series; the difference of two (at least 0); the sum of several; or zero,
 * for a part of Go's memory that this runtime does not have (`zero` says why), emitted with the
 * series `beside` it, so that a target that did not answer gets none.
 */
export type Source = string | { minus: [string, string] } | { sum: string[] } | { zero: string; beside: string };

// The parts of resident memory that the server reports (app/metrics/runtime.ts): they add up to
// it, so Go's identity sys = heap_sys + stack_sys + mspan_sys + mcache_sys + buck_hash_sys +
// gc_sys + other_sys holds by construction.
const RESIDENT_PARTS = ["js_heap", "buffers", "native", "stack", "other"].map((p) => `bun_resident_${p}_bytes`);

export interface GoMetric {
  name: string;
  type: MetricType;
  help: string;
  from: Source;
}

export const GO_METRICS: GoMetric[] = [
  { name: "go_goroutines", type: "gauge", help: "Number of goroutines that currently exist.", from: "edgechat_tasks" },
  { name: "go_threads", type: "gauge", help: "Number of OS threads created.", from: "bun_threads" },
  {
    name: "go_gc_duration_seconds",
    type: "summary",
    help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.",
    from: "bun_gc_pause_seconds",
  },
  { name: "go_memstats_alloc_bytes", type: "gauge", help: "Number of bytes allocated in heap and currently in use.", from: "bun_jsc_heap_size_bytes" },
  {
    name: "go_memstats_alloc_bytes_total",
    type: "counter",
    help: "Total number of bytes allocated in heap until now, even if released already.",
    from: "bun_mimalloc_allocated_bytes_total",
  },
  { name: "go_memstats_sys_bytes", type: "gauge", help: "Number of bytes obtained from system.", from: { sum: RESIDENT_PARTS } },
  {
    name: "go_memstats_mallocs_total",
    type: "counter",
    help: "Total number of heap objects allocated, both live and gc-ed.",
    from: "bun_mimalloc_allocations_total",
  },
  { name: "go_memstats_frees_total", type: "counter", help: "Total number of heap objects frees.", from: "bun_mimalloc_frees_total" },
  { name: "go_memstats_heap_alloc_bytes", type: "gauge", help: "Number of heap bytes allocated and currently in use.", from: "bun_jsc_heap_size_bytes" },
  { name: "go_memstats_heap_sys_bytes", type: "gauge", help: "Number of heap bytes obtained from system.", from: "bun_resident_js_heap_bytes" },
  {
    name: "go_memstats_heap_idle_bytes",
    type: "gauge",
    help: "Number of heap bytes waiting to be used.",
    from: { minus: ["bun_resident_js_heap_bytes", "bun_jsc_heap_size_bytes"] },
  },
  { name: "go_memstats_heap_inuse_bytes", type: "gauge", help: "Number of heap bytes that are in use.", from: "bun_jsc_heap_size_bytes" },
  {
    name: "go_memstats_heap_released_bytes",
    type: "gauge",
    help: "Number of heap bytes released to OS.",
    from: { minus: ["bun_mimalloc_committed_peak_bytes", "bun_mimalloc_committed_bytes"] },
  },
  { name: "go_memstats_heap_objects", type: "gauge", help: "Number of currently allocated objects.", from: "bun_jsc_objects" },
  {
    name: "go_memstats_stack_inuse_bytes",
    type: "gauge",
    help: "Number of bytes obtained from system for stack allocator in non-CGO environments.",
    from: "bun_resident_stack_bytes",
  },
  { name: "go_memstats_stack_sys_bytes", type: "gauge", help: "Number of bytes obtained from system for stack allocator.", from: "bun_resident_stack_bytes" },
  { name: "go_memstats_mspan_inuse_bytes", type: "gauge", help: "Number of bytes in use by mspan structures.", from: "bun_resident_native_bytes" },
  {
    name: "go_memstats_mspan_sys_bytes",
    type: "gauge",
    help: "Number of bytes used for mspan structures obtained from system.",
    from: "bun_resident_native_bytes",
  },
  { name: "go_memstats_mcache_inuse_bytes", type: "gauge", help: "Number of bytes in use by mcache structures.", from: "bun_resident_buffers_bytes" },
  {
    name: "go_memstats_mcache_sys_bytes",
    type: "gauge",
    help: "Number of bytes used for mcache structures obtained from system.",
    from: "bun_resident_buffers_bytes",
  },
  {
    name: "go_memstats_buck_hash_sys_bytes",
    type: "gauge",
    help: "Number of bytes used by the profiling bucket hash table.",
    from: { zero: "Bun keeps no profiling bucket hash table", beside: "bun_resident_other_bytes" },
  },
  {
    name: "go_memstats_gc_sys_bytes",
    type: "gauge",
    help: "Number of bytes used for garbage collection system metadata.",
    from: {
      zero: "JSC keeps its collector metadata (mark bits, block footers) inside the heap's blocks, counted in heap_sys",
      beside: "bun_resident_other_bytes",
    },
  },
  { name: "go_memstats_other_sys_bytes", type: "gauge", help: "Number of bytes used for other system allocations.", from: "bun_resident_other_bytes" },
  {
    name: "go_memstats_next_gc_bytes",
    type: "gauge",
    help: "Number of heap bytes when next garbage collection will take place.",
    from: "bun_jsc_heap_capacity_bytes",
  },
  {
    name: "go_memstats_last_gc_time_seconds",
    type: "gauge",
    help: "Number of seconds since 1970 of last garbage collection.",
    from: "bun_gc_last_time_seconds",
  },
];
