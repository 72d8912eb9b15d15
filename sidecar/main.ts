// The metrics sidecar: serves the edgechat server's metrics in the Go client's schema, for
// dashboards built for Go services. Settings from the environment (sidecar/README.md).
import { join } from "node:path";
import { formatOpenMetrics, formatText, negotiate, type MetricFamily } from "./exposition.ts";
import { createLog } from "./log.ts";
import { createPipeline } from "./pipeline.ts";
import { compileRelabel, loadRelabelConfig } from "./relabel.ts";
import { SelfMetrics } from "./self-metrics.ts";
import { startMetricsServer } from "./serve.ts";
import { identityFromEnv } from "./translate.ts";

const env = process.env;
const log = createLog();

function addr(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  if (!m) throw new Error(`EDGECHAT_SIDECAR_ADDR must be host:port, got "${value}"`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
}

function positive(name: string, fallback: number): number {
  const v = env[name] ? Number(env[name]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive whole number, got "${env[name]}"`);
  return v;
}

try {
  const relabelPath = env.EDGECHAT_SIDECAR_RELABEL || join(import.meta.dir, "relabel.yaml");
  const identity = identityFromEnv(env);
  const target = env.EDGECHAT_SIDECAR_TARGET || "http://127.0.0.1:2112/metrics";
  const collect = createPipeline({
    target,
    timeoutMs: positive("EDGECHAT_SIDECAR_TIMEOUT_MS", 3000),
    maxBytes: positive("EDGECHAT_SIDECAR_MAX_BYTES", 8 * 1024 * 1024),
    maxSeries: positive("EDGECHAT_SIDECAR_MAX_SERIES", 20_000),
    maxLabels: positive("EDGECHAT_SIDECAR_MAX_LABELS", 30),
    identity,
    relabel: compileRelabel(loadRelabelConfig(relabelPath)),
    self: new SelfMetrics(),
    onTargetChange: (up, error) => (up ? log.info("target up", { target }) : log.warn("target down", { target, error })),
  });
  const { host, port } = addr(env.EDGECHAT_SIDECAR_ADDR || "0.0.0.0:9091");
  // Scrapers that arrive together share one scrape (pipeline.ts) and one rendering of it per format.
  const rendered = new WeakMap<MetricFamily[], Map<string, string>>();
  const server = await startMetricsServer({
    host,
    port,
    log,
    maxConcurrent: positive("EDGECHAT_SIDECAR_MAX_CONCURRENT", 4),
    async render(accept) {
      const families = await collect();
      const { format, contentType } = negotiate(accept);
      let bodies = rendered.get(families);
      if (!bodies) rendered.set(families, (bodies = new Map()));
      let body = bodies.get(format);
      if (body === undefined) bodies.set(format, (body = format === "openmetrics" ? formatOpenMetrics(families) : formatText(families)));
      return { body, contentType };
    },
  });
  log.info("sidecar listening", { port: server.port, host, target, relabel: relabelPath, ...identity });
  const stop = async (signal: string) => {
    log.info("sidecar stopping", { signal });
    await server.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
} catch (err) {
  log.error("sidecar cannot start", { err: (err as Error).message });
  process.exit(1);
}
