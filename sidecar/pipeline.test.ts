import { afterAll, beforeAll, expect, test } from "bun:test";
import { parseText } from "./exposition.ts";
import { createPipeline, relabelFamilies } from "./pipeline.ts";
import { compileRelabel } from "./relabel.ts";
import { SelfMetrics } from "./self-metrics.ts";
import { NativeResponse } from "./serve.ts";

const id = { namespace: "ns", pod: "nrt-m1", region: "nrt", machine: "m1" };
let target: ReturnType<typeof Bun.serve>;
let hits = 0;
const body = `# HELP edgechat_tasks Tasks.
# TYPE edgechat_tasks gauge
edgechat_tasks 3
# HELP grpc_server_handling_seconds Latency.
# TYPE grpc_server_handling_seconds histogram
grpc_server_handling_seconds_bucket{grpc_method="Send",le="0.1"} 1
grpc_server_handling_seconds_bucket{grpc_method="Send",le="+Inf"} 2
grpc_server_handling_seconds_sum{grpc_method="Send"} 0.3
grpc_server_handling_seconds_count{grpc_method="Send"} 2
`;

beforeAll(() => {
  target = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch() {
      hits++;
      await Bun.sleep(50);
      return new NativeResponse(body);
    },
  });
});
afterAll(() => target.stop(true));

const pipeline = (url: string, rules = compileRelabel([])) =>
  createPipeline({ target: url, timeoutMs: 1000, maxBytes: 1 << 20, identity: id, relabel: rules, self: new SelfMetrics() });

test("a healthy target: go_* added, identity on every sample, target_up 1", async () => {
  const families = await pipeline(`http://127.0.0.1:${target.port}/metrics`)();
  const get = (n: string) => families.find((f) => f.name === n);
  expect(get("go_goroutines")?.samples[0]).toMatchObject({ value: 3, labels: { kubernetes_pod_name: "nrt-m1", region: "nrt" } });
  expect(get("edgechat_sidecar_target_up")?.samples[0]).toMatchObject({ value: 1, labels: { kubernetes_namespace: "ns" } });
  expect(get("grpc_server_handling_seconds")?.samples.length).toBe(4);
});

test("concurrent scrapes of the sidecar share one scrape of the server", async () => {
  const collect = pipeline(`http://127.0.0.1:${target.port}/metrics`);
  const before = hits;
  await Promise.all([collect(), collect(), collect()]);
  expect(hits - before).toBe(1);
});

test("a dead target: only the sidecar's own series, target_up 0, the error counted", async () => {
  const dead = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = dead.port;
  dead.stop(true);
  const collect = pipeline(`http://127.0.0.1:${port}/metrics`);
  await collect();
  const families = await collect();
  expect(families.every((f) => f.name.startsWith("edgechat_sidecar_"))).toBe(true);
  const up = families.find((f) => f.name === "edgechat_sidecar_target_up")!;
  expect(up.samples[0].value).toBe(0);
  const errors = families.find((f) => f.name === "edgechat_sidecar_scrape_errors_total")!;
  expect(errors.samples.find((s) => s.labels.reason === "connection")?.value).toBe(2);
});

test("relabeling drops, rewrites and renames samples, keeping families whole", () => {
  const families = parseText(body);
  const rules = compileRelabel([
    { source_labels: ["__name__", "le"], regex: "grpc_server_handling_seconds_bucket;0.1", action: "drop" },
    { source_labels: ["grpc_method"], target_label: "method" },
    { action: "labeldrop", regex: "grpc_method" },
    { source_labels: ["__name__"], regex: "edgechat_tasks", target_label: "__name__", replacement: "edgechat_async_tasks" },
  ]);
  const out = relabelFamilies(families, rules);
  const hist = out.find((f) => f.name === "grpc_server_handling_seconds")!;
  expect(hist.samples.map((s) => [s.name, s.labels])).toEqual([
    ["grpc_server_handling_seconds_bucket", { le: "+Inf", method: "Send" }],
    ["grpc_server_handling_seconds_sum", { method: "Send" }],
    ["grpc_server_handling_seconds_count", { method: "Send" }],
  ]);
  expect(out.find((f) => f.name === "edgechat_async_tasks")).toMatchObject({ type: "gauge", samples: [{ name: "edgechat_async_tasks", value: 3 }] });
  expect(out.find((f) => f.name === "edgechat_tasks")).toBeUndefined();
});
