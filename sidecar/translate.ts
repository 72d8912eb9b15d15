// From the server's series to the dashboard's: the Go client's go_* families (mapping.ts) added
// beside the server's own, and the identity labels the dashboards select on, on every sample.
import { hostname } from "node:os";
import type { MetricFamily, Sample } from "./exposition.ts";
import { GO_METRICS, type Source } from "./mapping.ts";

export interface Identity {
  namespace: string;
  pod: string;
  region: string;
  machine: string;
}

/**
 * Fly overwrites app, region, host and instance on what it scrapes, so the identity lives in
 * labels of our own: kubernetes_namespace and kubernetes_pod_name (what dashboard 10826 selects
 * on), region and machine.
 */
export function identityFromEnv(env: Record<string, string | undefined> = process.env): Identity {
  const region = env.FLY_REGION || env.EDGECHAT_REGION || "local";
  const machine = env.FLY_MACHINE_ID || hostname();
  return {
    namespace: env.EDGECHAT_NAMESPACE || env.FLY_APP_NAME || "edgechat",
    pod: `${region}-${machine}`,
    region,
    machine,
  };
}

export function translate(source: MetricFamily[], id: Identity): MetricFamily[] {
  const byName = new Map(source.map((f) => [f.name, f]));
  const out: MetricFamily[] = [];
  for (const go of GO_METRICS) {
    const samples = read(byName, go.from, go.name);
    if (samples.length > 0) out.push({ name: go.name, type: go.type, help: go.help, samples });
  }
  const info = byName.get("bun_info")?.samples[0];
  if (info) {
    out.push({
      name: "go_info",
      type: "gauge",
      help: "Information about the Go environment.",
      samples: [{ name: "go_info", labels: { version: `bun${info.labels.version ?? ""}` }, value: 1 }],
    });
  }
  out.push(...source);
  const labels = { kubernetes_namespace: id.namespace, kubernetes_pod_name: id.pod, region: id.region, machine: id.machine };
  return out.map((f) => ({ ...f, samples: f.samples.map((s) => ({ ...s, labels: { ...s.labels, ...labels } })) }));
}

function read(byName: Map<string, MetricFamily>, from: Source, goName: string): Sample[] {
  if (typeof from === "string") {
    const f = byName.get(from);
    if (!f) return [];
    // Summary and histogram samples carry the family name as a prefix (_sum, _count, _bucket).
    return f.samples.map((s) => ({ ...s, name: goName + s.name.slice(from.length) }));
  }
  if ("zero" in from) return byName.has(from.beside) ? [{ name: goName, labels: {}, value: 0 }] : [];
  const values = ("sum" in from ? from.sum : from.minus).map((n) => byName.get(n)?.samples[0]?.value);
  if (values.some((v) => v === undefined)) return [];
  const [first, second] = values as number[];
  // A difference of byte counts read at slightly different moments: never below 0.
  const value = "sum" in from ? (values as number[]).reduce((x, y) => x + y, 0) : Math.max(0, first - second);
  return [{ name: goName, labels: {}, value }];
}
