import { expect, test } from "bun:test";
import { parseText } from "./exposition.ts";
import { GO_METRICS } from "./mapping.ts";
import { identityFromEnv, translate } from "./translate.ts";

const server = `# HELP edgechat_tasks Live units of concurrency.
# TYPE edgechat_tasks gauge
edgechat_tasks 7
# HELP bun_threads OS threads.
# TYPE bun_threads gauge
bun_threads 9
# HELP bun_gc_pause_seconds Estimated pause.
# TYPE bun_gc_pause_seconds summary
bun_gc_pause_seconds{quantile="0"} 0.001
bun_gc_pause_seconds{quantile="0.25"} 0.002
bun_gc_pause_seconds{quantile="0.5"} 0.003
bun_gc_pause_seconds{quantile="0.75"} 0.004
bun_gc_pause_seconds{quantile="1"} 0.02
bun_gc_pause_seconds_sum 0.5
bun_gc_pause_seconds_count 60
# HELP bun_jsc_heap_size_bytes Live heap.
# TYPE bun_jsc_heap_size_bytes gauge
bun_jsc_heap_size_bytes 6000000
# HELP bun_jsc_heap_capacity_bytes Heap capacity.
# TYPE bun_jsc_heap_capacity_bytes gauge
bun_jsc_heap_capacity_bytes 9000000
# TYPE bun_resident_js_heap_bytes gauge
bun_resident_js_heap_bytes 9000000
# TYPE bun_resident_buffers_bytes gauge
bun_resident_buffers_bytes 1000000
# TYPE bun_resident_native_bytes gauge
bun_resident_native_bytes 20000000
# TYPE bun_resident_stack_bytes gauge
bun_resident_stack_bytes 135168
# TYPE bun_resident_other_bytes gauge
bun_resident_other_bytes 30000000
# HELP bun_mimalloc_allocations_total Allocations.
# TYPE bun_mimalloc_allocations_total counter
bun_mimalloc_allocations_total 1000
# HELP bun_info Version.
# TYPE bun_info gauge
bun_info{version="1.4.5",revision="abc"} 1
# HELP grpc_server_started_total Total number of RPCs started on the server.
# TYPE grpc_server_started_total counter
grpc_server_started_total{grpc_type="unary",grpc_service="chat.v1.ChatService",grpc_method="Send"} 3
`;

const id = { namespace: "edgechat", pod: "nrt-abc123", region: "nrt", machine: "abc123" };

test("go_* families are read from the server's series, under client_golang's names and types", () => {
  const out = translate(parseText(server), id);
  const get = (name: string) => out.find((f) => f.name === name);
  expect(get("go_goroutines")?.samples[0].value).toBe(7);
  expect(get("go_threads")?.samples[0].value).toBe(9);
  expect(get("go_memstats_heap_idle_bytes")?.samples[0].value).toBe(3000000);
  expect(get("go_memstats_mallocs_total")).toMatchObject({ type: "counter", samples: [{ name: "go_memstats_mallocs_total", value: 1000 }] });
  const gc = get("go_gc_duration_seconds")!;
  expect(gc.type).toBe("summary");
  expect(gc.samples.map((s) => [s.name, s.labels.quantile ?? "", s.value])).toEqual([
    ["go_gc_duration_seconds", "0", 0.001],
    ["go_gc_duration_seconds", "0.25", 0.002],
    ["go_gc_duration_seconds", "0.5", 0.003],
    ["go_gc_duration_seconds", "0.75", 0.004],
    ["go_gc_duration_seconds", "1", 0.02],
    ["go_gc_duration_seconds_sum", "", 0.5],
    ["go_gc_duration_seconds_count", "", 60],
  ]);
  expect(get("go_info")?.samples[0].labels.version).toBe("bun1.4.5");
  // Go's identity: sys is the sum of the seven *_sys parts (two of which Bun does not have: 0).
  const value = (name: string) => get(name)?.samples[0].value;
  const parts = ["heap", "stack", "mspan", "mcache", "buck_hash", "gc", "other"].map((p) => value(`go_memstats_${p}_sys_bytes`));
  expect(parts).toEqual([9000000, 135168, 20000000, 1000000, 0, 0, 30000000]);
  expect(value("go_memstats_sys_bytes")).toBe(60135168);
  // Families whose source is absent are left out, never invented.
  expect(get("go_memstats_heap_released_bytes")).toBeUndefined();
});

test("every sample carries the identity labels; the server's own series pass through", () => {
  const out = translate(parseText(server), id);
  const grpc = out.find((f) => f.name === "grpc_server_started_total")!;
  expect(grpc.samples[0].labels).toEqual({
    grpc_type: "unary",
    grpc_service: "chat.v1.ChatService",
    grpc_method: "Send",
    kubernetes_namespace: "edgechat",
    kubernetes_pod_name: "nrt-abc123",
    region: "nrt",
    machine: "abc123",
  });
  for (const f of out) for (const s of f.samples) expect(s.labels.kubernetes_pod_name).toBe("nrt-abc123");
});

test("identity from Fly's environment, or the host elsewhere", () => {
  expect(identityFromEnv({ FLY_APP_NAME: "chat", FLY_REGION: "ams", FLY_MACHINE_ID: "m1" })).toEqual({
    namespace: "chat",
    pod: "ams-m1",
    region: "ams",
    machine: "m1",
  });
  expect(identityFromEnv({ EDGECHAT_NAMESPACE: "ns", FLY_APP_NAME: "chat" }).namespace).toBe("ns");
  const local = identityFromEnv({});
  expect(local.namespace).toBe("edgechat");
  expect(local.pod).toBe(`local-${local.machine}`);
});

test("the mapping covers every go_* series dashboard 10826 queries, except lookups_total", async () => {
  const dashboard = await Bun.file(new URL("../deploy/grafana/dashboards/go-metrics-10826.json", import.meta.url)).text();
  const names = new Set([...dashboard.matchAll(/\b(go_[a-z_]+)/g)].map((m) => m[1]));
  expect(names.size).toBeGreaterThan(20);
  const mapped = new Set([...GO_METRICS.map((m) => m.name), "go_info"]);
  const missing = [...names].filter((n) => !mapped.has(n));
  expect(missing).toEqual(["go_memstats_lookups_total"]);
});
