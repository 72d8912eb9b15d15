// A real Prometheus (Debian's /usr/bin/prometheus) for the tests, scraping given targets every
// second, and the metrics sidecar as a process of its own. Every process started here is
// registered for stopAll(), which a test file calls in its afterAll.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROOT } from "./server.ts";
import { readJsonLines } from "./json-lines.ts";

const live = new Set<Subprocess>();
const tempDirs = new Set<string>();
// A safety net for scripts: `bun run` fires "exit", but `bun test` does not, so test files call
// stopAll() in their afterAll as well (bun runs afterAll even when beforeAll threw).
process.on("exit", () => {
  for (const proc of live) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
});

/** Registers `proc` for stopAll() and for a SIGKILL when the process exits, if it still runs then. */
export function killOnExit(proc: Subprocess): void {
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
}

/** Ends every process registered with killOnExit (all the ones started here are): SIGTERM, then SIGKILL. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((proc) => terminate(proc)));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Sends `signal`, then SIGKILL if the process is still there after `graceMs`; resolves on exit. */
async function terminate(proc: Subprocess, signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<number> {
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await proc.exited;
    clearTimeout(timer);
  }
  return proc.exited;
}

/** Reads a child's stdout or stderr into `sink` as text, in the background. */
function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): void {
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  })();
}

/** A loopback port that was free a moment ago (the caller retries if someone takes it first). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

// ---- Prometheus ----

export interface PromSample {
  metric: Record<string, string>;
  /** [unix seconds, value as Prometheus writes it: "1.5", "NaN", "+Inf"] */
  value: [number, string];
}

export interface PrometheusProcess {
  url: string;
  port: number;
  /** Instant query at the current time: the vector's samples (a scalar comes back as one sample). */
  query(expr: string): Promise<PromSample[]>;
  /** Values of `label` on the series matching `match` (every series when no match is given). */
  labelValues(label: string, match?: string): Promise<string[]>;
  /** What Prometheus printed on stderr so far (it logs there). */
  logs(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** Scrape (and evaluation) interval; 1s unless given. */
  scrapeInterval?: string;
  jobName?: string;
  /** How long to wait for /-/ready, in ms. */
  readyTimeoutMs?: number;
}

export const PROMETHEUS_BIN = "/usr/bin/prometheus";
export const PROMTOOL_BIN = "/usr/bin/promtool";

/**
 * Starts Prometheus on a free loopback port with a fresh storage dir and a config that scrapes
 * `targets` ("host:port", or a URL whose path is the metrics path) and waits until it is ready.
 */
export async function startPrometheus(targets: string[], opts: PrometheusOptions = {}): Promise<PrometheusProcess> {
  if (!(await Bun.file(PROMETHEUS_BIN).exists())) {
    throw new Error(`${PROMETHEUS_BIN} is missing: install Debian's package with \`apt-get update && apt-get install -y prometheus\``);
  }
  const dir = mkdtempSync(join(tmpdir(), "edgechat-prometheus-"));
  tempDirs.add(dir);
  const configFile = join(dir, "prometheus.yml");
  writeFileSync(configFile, prometheusConfig(targets, opts));
  try {
    // The port is picked before Prometheus binds it, so another process may take it in between:
    // then Prometheus exits at once, and we try another.
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(dir, configFile, await freePort(), opts.readyTimeoutMs ?? 30_000);
      } catch (err) {
        if (attempt >= 3 || !/address already in use/i.test(String(err))) throw err;
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    throw err;
  }
}

/** The generated configuration: one job, static targets, scraped every `scrapeInterval`. */
export function prometheusConfig(targets: string[], opts: PrometheusOptions = {}): string {
  const interval = opts.scrapeInterval ?? "1s";
  // Group the targets by scheme and path, since both belong to the scrape config, not the target.
  const groups = new Map<string, { scheme: string; path: string; hosts: string[] }>();
  for (const t of targets) {
    const u = /^https?:\/\//.test(t) ? new URL(t) : new URL(`http://${t}/metrics`);
    const scheme = u.protocol.replace(":", "");
    const path = u.pathname || "/metrics";
    const key = `${scheme} ${path}`;
    if (!groups.has(key)) groups.set(key, { scheme, path, hosts: [] });
    groups.get(key)!.hosts.push(u.host);
  }
  const job = opts.jobName ?? "edgechat-sidecar";
  const lines = ["global:", `  scrape_interval: ${interval}`, `  scrape_timeout: ${interval}`, `  evaluation_interval: ${interval}`, "scrape_configs:"];
  [...groups.values()].forEach((g, i) => {
    lines.push(
      `  - job_name: ${JSON.stringify(groups.size === 1 ? job : `${job}-${i}`)}`,
      `    scheme: ${g.scheme}`,
      `    metrics_path: ${JSON.stringify(g.path)}`,
      "    static_configs:",
      `      - targets: ${JSON.stringify(g.hosts)}`,
    );
  });
  return lines.join("\n") + "\n";
}

async function launch(dir: string, configFile: string, port: number, readyTimeoutMs: number): Promise<PrometheusProcess> {
  const storage = join(dir, "data");
  const proc = Bun.spawn(
    [
      PROMETHEUS_BIN,
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${storage}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Debian's build defaults these to /etc/prometheus/...; nothing here serves consoles.
      `--web.console.templates=${dir}`,
      `--web.console.libraries=${dir}`,
      "--log.level=warn",
    ],
    { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir }, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  killOnExit(proc);
  let stderr = "";
  drain(proc.stderr, (t) => (stderr += t));
  drain(proc.stdout, (t) => (stderr += t));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + readyTimeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await proc.exited;
      throw new Error(`prometheus exited (code ${proc.exitCode}) before it was ready: ${stderr}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > until) {
      await terminate(proc, "SIGKILL");
      throw new Error(`prometheus not ready after ${readyTimeoutMs} ms: ${stderr}`);
    }
    await Bun.sleep(50);
  }

  const api = async <T>(path: string, params: [string, string][], method: "GET" | "POST"): Promise<T> => {
    // Queries go as a POST form (long PromQL does not fit a URL comfortably); the label API is GET only.
    const form = new URLSearchParams(params);
    const res = method === "POST" ? await fetch(`${url}/api/v1/${path}`, { method, body: form }) : await fetch(`${url}/api/v1/${path}?${form}`);
    const text = await res.text();
    let body: { status: string; data: T; errorType?: string; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`prometheus ${path} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (body.status !== "success") throw new Error(`prometheus ${path} failed (${body.errorType}): ${body.error}; params: ${JSON.stringify(params)}`);
    return body.data;
  };
  return {
    url,
    port,
    async query(expr) {
      const data = await api<{ resultType: string; result: unknown }>("query", [["query", expr]], "POST");
      if (data.resultType === "vector") return data.result as PromSample[];
      if (data.resultType === "scalar") return [{ metric: {}, value: data.result as [number, string] }];
      throw new Error(`instant query gave a ${data.resultType}, not a vector: ${expr}`);
    },
    async labelValues(label, match) {
      return api<string[]>(`label/${encodeURIComponent(label)}/values`, match ? [["match[]", match]] : [], "GET");
    },
    logs: () => stderr,
    async stop() {
      await terminate(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- the sidecar ----

export interface SidecarProcess {
  port: number;
  /** Its metrics endpoint, http://127.0.0.1:<port>/metrics. */
  url: string;
  /** host:port, as a scrape target. */
  target: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/**
 * Starts `bun sidecar/main.ts` listening on a free loopback port (EDGECHAT_SIDECAR_ADDR can
 * override it) and resolves once it logs "sidecar listening". Only PATH and HOME are inherited,
 * so the identity labels come from `env` alone (EDGECHAT_SIDECAR_TARGET, FLY_REGION, ...).
 */
export async function startSidecar(env: Record<string, string>): Promise<SidecarProcess> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "sidecar/main.ts")], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", EDGECHAT_SIDECAR_ADDR: "127.0.0.1:0", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  killOnExit(proc);
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  drain(proc.stderr, (t) => (stderr += t));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not start in 15 s; stderr: ${stderr}; logs: ${JSON.stringify(logs)}`)), 15_000);
    void (async () => {
      await readJsonLines(proc.stdout, logs, (entry) => {
        if (entry.msg !== "sidecar listening") return;
        clearTimeout(timer);
        resolve(entry.port as number);
      });
      clearTimeout(timer);
      reject(new Error(`sidecar exited before listening (code ${await proc.exited}); stderr: ${stderr}; logs: ${JSON.stringify(logs)}`));
    })();
  }).catch(async (err) => {
    await terminate(proc, "SIGKILL");
    throw err;
  });
  return {
    port,
    url: `http://127.0.0.1:${port}/metrics`,
    target: `127.0.0.1:${port}`,
    proc,
    logs,
    stop: (signal = "SIGTERM") => terminate(proc, signal),
  };
}

/**
 * `promtool check metrics` on an exposition: its findings, one a line (empty when clean).
 * promtool exits 3 for lint findings and 1 when it cannot parse the input: the latter throws.
 */
export async function promtoolCheckMetrics(exposition: string): Promise<string[]> {
  const proc = Bun.spawn([PROMTOOL_BIN, "check", "metrics"], { stdin: new TextEncoder().encode(exposition), stdout: "pipe", stderr: "pipe" });
  killOnExit(proc);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0 && code !== 3) throw new Error(`promtool check metrics failed (exit ${code}): ${out}${err}`);
  return (out + err).split("\n").filter((l) => l.trim() !== "");
}
