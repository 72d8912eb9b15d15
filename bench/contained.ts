// The production entrypoint (the supervisor and the bundle, as the image runs them) inside a cgroup
// v1 memory controller with fly.toml's [env], and the bench's load generator beside it, outside the
// cgroup (loadgen-client.ts). Shared by test/e2e/capacity.test.ts (at fly.toml's limits) and bench/capacity.ts (the
// cost of each kind of stream, which those limits are computed from).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { freePort } from "../test/support/prometheus.ts";
export { LoadGen } from "./loadgen-client.ts";

export const ROOT = join(import.meta.dir, "..");
const CGROUPS = "/sys/fs/cgroup/memory";

/** fly.toml as the capacity test and bench read it. */
export function flyCapacity() {
  const fly = parse(readFileSync(join(ROOT, "fly.toml"), "utf8")) as any;
  return {
    vmMemory: fly.vm[0].memory as string,
    memoryBytes: Number.parseInt(fly.vm[0].memory, 10) * 1024 * 1024,
    softLimit: fly.http_service.concurrency.soft_limit as number,
    hardLimit: fly.http_service.concurrency.hard_limit as number,
    env: fly.env as Record<string, string>,
  };
}

/** Why a contained run is impossible here, or "" when it is possible. */
export function containmentUnavailable(): string {
  if (process.getuid?.() !== 0) return "not root";
  if (!existsSync(join(CGROUPS, "cgroup.procs"))) return `no cgroup v1 memory controller at ${CGROUPS}`;
  return "";
}

export interface Contained {
  port: number;
  /** Bytes the cgroup holds now, and at most since it was made (cgroup v1 counts page cache too). */
  usage(): number;
  peak(): number;
  oomKills(): number;
  failcnt(): number;
  running(): boolean;
  log(): string;
  ready(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Builds the bundle, makes a cgroup of `limitBytes`, and runs the supervisor in it until ready. */
export async function startContained(limitBytes: number, extraEnv: Record<string, string> = {}): Promise<Contained> {
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`the build failed: ${build.stderr.toString()}`);
  const cgroup = join(CGROUPS, `edgechat-contained-${process.pid}-${Date.now()}`);
  mkdirSync(cgroup);
  const write = (file: string, v: string) => writeFileSync(join(cgroup, file), v);
  const read = (file: string) => readFileSync(join(cgroup, file), "utf8");
  write("memory.limit_in_bytes", String(limitBytes));
  // No swap to fall back on, as on a Fly machine.
  if (existsSync(join(cgroup, "memory.memsw.limit_in_bytes"))) write("memory.memsw.limit_in_bytes", String(limitBytes));
  write("memory.swappiness", "0");

  const dataDir = mkdtempSync(join(tmpdir(), "edgechat-contained-"));
  const [port, metrics, sidecar] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...flyCapacity().env,
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    PORT: String(port),
    EDGECHAT_HOST: "127.0.0.1",
    EDGECHAT_METRICS_ADDR: `127.0.0.1:${metrics}`,
    EDGECHAT_SIDECAR_ADDR: `127.0.0.1:${sidecar}`,
    EDGECHAT_DATA_DIR: dataDir,
    FLY_REGION: "ams",
    ...extraEnv,
  };
  // The shell puts itself in the cgroup, then becomes the supervisor: all three processes are in it.
  const supervisor = Bun.spawn(["sh", "-c", `echo $$ > ${cgroup}/cgroup.procs && exec "${process.execPath}" dist/app/supervisor.js`], {
    cwd: ROOT,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  let log = "";
  for (const s of [supervisor.stdout, supervisor.stderr]) {
    void (async () => {
      for await (const chunk of s) log = (log + new TextDecoder().decode(chunk)).slice(-20_000);
    })();
  }
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true;
  const contained: Contained = {
    port,
    usage: () => Number(read("memory.usage_in_bytes")),
    peak: () => Number(read("memory.max_usage_in_bytes")),
    oomKills: () => Number(/oom_kill (\d+)/.exec(read("memory.oom_control"))?.[1] ?? 0),
    failcnt: () => Number(read("memory.failcnt")),
    running: () => supervisor.exitCode === null,
    log: () => log,
    ready,
    async stop() {
      supervisor.kill("SIGKILL");
      await supervisor.exited;
      for (const pid of read("cgroup.procs").split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
      for (let i = 0; i < 100 && read("cgroup.procs").trim() !== ""; i++) await Bun.sleep(50);
      rmdirSync(cgroup);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 200 && !(await ready()); i++) {
    if (supervisor.exitCode !== null) break;
    await Bun.sleep(100);
  }
  if (!(await ready())) {
    await contained.stop();
    throw new Error(`the server did not become ready:\n${log}`);
  }
  return contained;
}

/** The kinds of stream a client can open on edgechat (bench/loadgen.mjs). */
export const STREAM_KINDS = ["grpc-subscribe", "grpc-chat", "connect-subscribe", "grpc-web-subscribe", "ws"];
