import { expect, test } from "bun:test";
import { Histogram, Registry } from "prom-client";
import { FastHistogram } from "./fast-histogram.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.7, 1, 3, 42];

async function exposition(openMetrics = false) {
  const reference = new Registry();
  const fast = new Registry();
  if (openMetrics) for (const r of [reference, fast]) (r as Registry<never>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  const h = new Histogram({ name: "x_seconds", help: "Some latency.", buckets: BUCKETS, registers: [reference] });
  const f = new FastHistogram("x_seconds", "Some latency.", BUCKETS, fast);
  for (const v of SAMPLES) {
    h.observe(v);
    f.observe(v);
  }
  return { reference: await reference.metrics(), fast: await fast.metrics(), f };
}

test("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
  const { reference, fast } = await exposition();
  expect(fast).toBe(reference);
  expect(fast).toContain('x_seconds_bucket{le="0.01"} 4');
  expect(fast).toContain('x_seconds_bucket{le="+Inf"} 10');
  expect(fast).toContain("x_seconds_count 10");
});

test("in OpenMetrics too, and reset() empties it", async () => {
  const { reference, fast, f } = await exposition(true);
  expect(fast).toBe(reference);
  f.reset();
  const r = new Registry();
  r.registerMetric(f as unknown as never);
  expect(await r.metrics()).toContain('x_seconds_bucket{le="+Inf"} 0');
});

test("labelled children print like prom-client's labelled series", async () => {
  const reference = new Registry();
  const fast = new Registry();
  const labelNames = ["grpc_type", "grpc_method"];
  const h = new Histogram({ name: "y_seconds", help: "Handling.", buckets: BUCKETS, labelNames, registers: [reference] });
  const f = new FastHistogram("y_seconds", "Handling.", BUCKETS, fast, labelNames);
  const a = { grpc_type: "unary", grpc_method: "Send" };
  const b = { grpc_type: "server_stream", grpc_method: "Subscribe" };
  h.zero(b);
  f.child(b);
  for (const v of SAMPLES) {
    h.observe(a, v);
    f.child(a).observe(v);
  }
  const text = await fast.metrics();
  expect(text).toBe(await reference.metrics());
  expect(text).toContain('y_seconds_bucket{le="+Inf",grpc_type="server_stream",grpc_method="Subscribe"} 0');
  expect(text).toContain('y_seconds_count{grpc_type="unary",grpc_method="Send"} 10');
});
