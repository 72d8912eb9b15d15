// Starts the real server process on an ephemeral port, as a user would, and stops it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { readJsonLines } from "./json-lines.ts";

export const ROOT = join(import.meta.dir, "..", "..");

export interface ServerProcess {
  port: number;
  /** The private metrics endpoint, http://127.0.0.1:<port>/metrics. */
  metricsUrl: string;
  url: string;
  dataDir: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** `entry`: the program to run, relative to the repository (the production bundle is dist/app/main.js). */
export async function startServer(env: Record<string, string> = {}, dataDir?: string, entry = "app/main.ts"): Promise<ServerProcess> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "edgechat-test-"));
  const proc = Bun.spawn([process.execPath, join(ROOT, entry)], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      PORT: "0",
      EDGECHAT_HOST: "127.0.0.1",
      EDGECHAT_DATA_DIR: dir,
      LOG_LEVEL: "info",
      EDGECHAT_METRICS_ADDR: "127.0.0.1:0",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  void (async () => {
    for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
  })();
  let metricsUrl = "";
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 15 s; stderr: ${stderr}`)), 15_000);
    void (async () => {
      await readJsonLines(proc.stdout, logs, (entry) => {
        if (entry.msg !== "listening") return;
        clearTimeout(timer);
        metricsUrl = entry.metrics === "off" ? "" : `http://${entry.metrics}/metrics`;
        resolve(entry.port as number);
      });
      clearTimeout(timer);
      reject(new Error(`server exited before listening (code ${await proc.exited}); stderr: ${stderr}; logs: ${JSON.stringify(logs)}`));
    })();
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    metricsUrl,
    dataDir: dir,
    proc,
    logs,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      return await proc.exited;
    },
  };
}
