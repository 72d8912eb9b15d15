// The one entrypoint (npm start, and the container's): runs the server and the metrics sidecar
// side by side. Signals go to both; the server is waited for through its drain; a dead sidecar is
// restarted with backoff (metrics are not worth losing the chat over); a dead server ends the
// supervisor with a non-zero code so that the platform restarts the machine.
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createLogger } from "./log.ts";

const log = createLogger((process.env.LOG_LEVEL as "info") || "info", { svc: "edgechat-supervisor" });
const here = import.meta.dir;
// From the sources, main.ts; from the production bundle (scripts/build.ts), main.js.
const ext = import.meta.path.endsWith(".js") ? ".js" : ".ts";
const metricsAddr = process.env.EDGECHAT_METRICS_ADDR || "127.0.0.1:2112";
const sidecarEnv = { ...process.env, EDGECHAT_SIDECAR_TARGET: process.env.EDGECHAT_SIDECAR_TARGET || `http://${metricsAddr}/metrics` };

let stopping = false;
/** Set when a signal asked for the stop: only then is a server exit a clean one. */
let requested = false;
let sidecar: Subprocess | undefined;
let sidecarBackoffMs = 500;

const server = Bun.spawn([process.execPath, join(here, `main${ext}`)], { stdio: ["ignore", "inherit", "inherit"], env: process.env });
log.info("server started", { pid: server.pid });

function startSidecar(): void {
  if (stopping || metricsAddr === "off") return;
  const started = Date.now();
  sidecar = Bun.spawn([process.execPath, join(here, "..", "sidecar", `main${ext}`)], { stdio: ["ignore", "inherit", "inherit"], env: sidecarEnv });
  log.info("sidecar started", { pid: sidecar.pid });
  void sidecar.exited.then((code) => {
    if (stopping) return;
    // A sidecar that ran a while before dying gets a fresh, short backoff.
    sidecarBackoffMs = Date.now() - started > 60_000 ? 500 : Math.min(sidecarBackoffMs * 2, 30_000);
    log.warn("sidecar exited; restarting", { code, in_ms: sidecarBackoffMs });
    setTimeout(startSidecar, sidecarBackoffMs);
  });
}
startSidecar();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    requested = true;
    log.info("stopping", { signal });
    server.kill(signal);
    sidecar?.kill(signal);
  });
}

const code = await server.exited;
stopping = true;
sidecar?.kill("SIGTERM");
await sidecar?.exited;
const clean = requested && code === 0;
(clean ? log.info : log.error)("server exited", { code, requested });
// A server that died on its own must not look like a clean stop.
process.exit(clean ? 0 : code || 1);
