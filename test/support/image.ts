// The container image, built and run the way a platform would, without a container engine: the
// stand-in base image (deploy/standin/build-standin.sh), `buildah bud` on the project's Dockerfile
// as it is, and `buildah run --isolation chroot --network host` of the image's own ENTRYPOINT with
// its USER, WORKDIR and ENV. Needs root and the Debian packages buildah and debootstrap.
//
// What chroot isolation is and is not (checked with buildah 1.28, Debian bookworm):
// - the process shares this machine's PID and network namespaces: a pid it logs is a host pid, and
//   it listens on the host's loopback (so every port comes from the caller, through the env);
// - the image's VOLUME /data is a fresh directory per container, owned like /data in the image
//   (bun:bun), so uid 1000 can write there without a bind mount;
// - a signal sent to the `buildah run` process does NOT reach the entrypoint: buildah's innermost
//   helper (buildah-chroot-exec) answers SIGINT, SIGTERM and SIGHUP with a SIGKILL to the command
//   (chroot/run_common.go, runUsingChrootExecMain). So `stop()` signals the entrypoint process
//   itself, as Fly's init does with kill_signal, and the cleanup kills whatever a SIGKILLed
//   supervisor left behind (without a PID namespace, nothing else would).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROOT } from "./server.ts";
import { readJsonLines } from "./json-lines.ts";

export const STANDIN_SCRIPT = join(ROOT, "deploy", "standin", "build-standin.sh");
/** The Debian packages this needs, for `apt-get install`. */
export const PACKAGES = ["buildah", "debootstrap"];

type LogLine = Record<string, unknown>;

interface Result {
  code: number;
  out: string;
  err: string;
}

async function exec(argv: string[], opts: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<Result> {
  const proc = Bun.spawn(argv, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

async function must(argv: string[]): Promise<string> {
  const r = await exec(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${r.code}): ${r.err || r.out}`);
  return r.out;
}

function onPath(cmd: string): boolean {
  return Bun.which(cmd) !== null;
}

/**
 * Whether images can be built and run here: root, and buildah and debootstrap installed (this
 * installs them with apt-get when they are missing and `install` is true). Never throws.
 */
export async function buildahAvailable(install = true): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: "not root (buildah needs root to build and run images here)" };
  const missing = () => PACKAGES.filter((p) => !onPath(p));
  if (missing().length > 0 && install && onPath("apt-get")) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const update = await exec(["apt-get", "update", "-qq"], { env });
    const inst = update.code === 0 ? await exec(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing()], { env }) : update;
    if (inst.code !== 0) return { ok: false, reason: `apt-get could not install ${missing().join(" ")}: ${(inst.err || inst.out).trim().slice(-500)}` };
  }
  if (missing().length > 0) return { ok: false, reason: `${missing().join(" and ")} missing and not installable (apt-get install -y ${PACKAGES.join(" ")})` };
  return { ok: true };
}

/** Builds (or finds cached) oven/bun:<version>, the stand-in base image. Returns the script's log. */
export async function ensureStandin(): Promise<string> {
  const r = await exec(["bash", STANDIN_SCRIPT]);
  if (r.code !== 0) throw new Error(`${STANDIN_SCRIPT} failed (exit ${r.code}):\n${r.err}${r.out}`);
  return r.err + r.out;
}

export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Volumes?: Record<string, unknown> | null;
  ExposedPorts?: Record<string, unknown> | null;
  StopSignal?: string;
  Labels?: Record<string, string> | null;
}

/** The image's config (USER, ENV, ENTRYPOINT, ...) as buildah stores it. */
export async function imageConfig(tag: string): Promise<ImageConfig> {
  const info = JSON.parse(await must(["buildah", "inspect", "--type", "image", tag]));
  return info.OCIv1?.config ?? {};
}

/** The image's Docker-format HEALTHCHECK, if it kept one. */
export async function imageHealthcheck(tag: string): Promise<{ Test: string[] } | undefined> {
  const info = JSON.parse(await must(["buildah", "inspect", "--type", "image", tag]));
  return info.Docker?.config?.Healthcheck ?? undefined;
}

export interface BuiltImage {
  tag: string;
  id: string;
  /** As `buildah images` prints it, e.g. "206 MB". */
  size: string;
  /** The build's stdout and stderr. */
  output: string;
  ms: number;
}

/**
 * `buildah bud --isolation chroot --network host` on the repository root with its Dockerfile as is.
 * Docker format, as `docker build` and Fly's builders make (OCI has no HEALTHCHECK). The image that
 * had `tag` before is removed when nothing else uses it.
 */
export async function buildImage(tag: string): Promise<BuiltImage> {
  const before = await exec(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", tag]);
  const started = Date.now();
  const r = await exec([
    "buildah",
    "bud",
    "--isolation",
    "chroot",
    "--network",
    "host",
    "--format",
    "docker",
    "--file",
    join(ROOT, "Dockerfile"),
    "--tag",
    tag,
    ROOT,
  ]);
  const ms = Date.now() - started;
  const output = r.out + r.err;
  if (r.code !== 0) throw new Error(`buildah bud failed (exit ${r.code}):\n${output.slice(-6000)}`);
  const id = (await must(["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", tag])).trim();
  const old = before.code === 0 ? before.out.trim() : "";
  if (old && old !== id) await exec(["buildah", "rmi", old]);
  const size = (await must(["buildah", "images", "--format", "{{.Size}}", tag])).trim().split("\n")[0];
  return { tag, id, size, output, ms };
}

// ---- running an image ----

export interface RunningImage {
  /** The buildah working container. */
  container: string;
  /** The `buildah run` process; it exits with the entrypoint's code (1 if a signal ended it). */
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every JSON line of stdout so far (non-JSON lines as {unparsed}). */
  logs: LogLine[];
  /** stderr so far (buildah's own messages land there). */
  stderr(): string;
  /** The log lines with this msg (and svc, if given). */
  find(msg: string, svc?: string): LogLine[];
  /** Waits for a log line with this msg (and svc); fails early if the process exits first. */
  waitFor(msg: string, svc?: string, ms?: number): Promise<LogLine>;
  /** The pid (host namespace) of the image's ENTRYPOINT process, once it runs. */
  entrypointPid(ms?: number): Promise<number>;
  /** Resolves with the `buildah run` exit code, once the working container is removed. */
  exited: Promise<number>;
  /** Sends `signal` to the entrypoint process (see the top of this file) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

const running = new Set<RunningImage>();
let seq = 0;

/** The parent pid of `pid`, or undefined when it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The argv of `pid`, or undefined when it is gone. */
export function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((s) => s !== "");
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** The processes under `pid` (children, their children, ...), from /proc. */
export function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentPid(Number(entry));
    if (parent !== undefined) kids.set(parent, [...(kids.get(parent) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of kids.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** The root directory of `pid` as the host sees it ("/" unless chrooted), or undefined when it is gone. */
function rootOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/root`);
  } catch {
    return undefined;
  }
}

/**
 * Runs the image's ENTRYPOINT (+ CMD) as `buildah run --isolation chroot --network host` with the
 * image's USER (passed explicitly) and WORKDIR, its ENV plus `env` (which wins), and returns at once;
 * wait for what you need with waitFor(). The working container is removed when the process exits.
 */
export async function runImage(tag: string, env: Record<string, string> = {}): Promise<RunningImage> {
  const config = await imageConfig(tag);
  const user = config.User || "root";
  const workdir = config.WorkingDir || "/";
  const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (command.length === 0) throw new Error(`${tag} has neither ENTRYPOINT nor CMD`);
  const envArgs: string[] = [];
  for (const kv of config.Env ?? []) envArgs.push("--env", kv);
  for (const [k, v] of Object.entries(env)) envArgs.push("--env", `${k}=${v}`);
  // No --volume: buildah gives VOLUME /data a fresh directory owned like the image's /data (bun).
  const container = await fromImage(tag);
  const argv = [
    "buildah",
    "run",
    "--isolation",
    "chroot",
    "--network",
    "host",
    "--user",
    user,
    "--workingdir",
    workdir,
    ...envArgs,
    container,
    "--",
    ...command,
  ];
  const proc = Bun.spawn(argv, { cwd: ROOT, env: process.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });

  const logs: LogLine[] = [];
  let stderr = "";
  let stdoutDone!: () => void;
  const stdoutClosed = new Promise<void>((r) => (stdoutDone = r));
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  void readJsonLines(proc.stdout, logs).then(() => stdoutDone());

  const find = (msg: string, svc?: string) => logs.filter((l) => l.msg === msg && (!svc || l.svc === svc));
  // The chrooted processes this run started (descendants of buildah run, and pids in the logs),
  // with their root: after a SIGKILL to the supervisor its children are init's, and only a process
  // with the same pid and the same root is still one of them.
  const seen = new Map<number, string>();
  const remember = () => {
    const pids = [...descendants(proc.pid), ...logs.map((l) => l.pid).filter((p): p is number => typeof p === "number")];
    for (const p of pids) {
      const root = seen.has(p) ? undefined : rootOf(p);
      if (root !== undefined && root !== "/") seen.set(p, root);
    }
  };

  let entrypoint: number | undefined;
  const findEntrypoint = (): number | undefined => {
    // buildah run -> buildah-chroot-runtime -> buildah-chroot-exec -> the entrypoint
    for (const p of descendants(proc.pid)) {
      const parent = parentPid(p);
      if (parent !== undefined && cmdline(parent)?.[0] === "buildah-chroot-exec") return p;
    }
    return undefined;
  };

  let self!: RunningImage;
  const exited = (async () => {
    const code = await proc.exited;
    await Promise.race([stdoutClosed, Bun.sleep(1000)]);
    // A supervisor killed by SIGKILL leaves its children to init: end what the image started.
    remember();
    for (const [p, root] of seen) {
      if (alive(p) && rootOf(p) === root) {
        try {
          process.kill(p, "SIGKILL");
        } catch {}
      }
    }
    await exec(["buildah", "rm", container]);
    running.delete(self);
    return code;
  })();

  const handle: RunningImage = {
    container,
    proc,
    logs,
    stderr: () => stderr,
    find,
    async waitFor(msg, svc, ms = 20_000) {
      const until = Date.now() + ms;
      for (;;) {
        const hit = find(msg, svc)[0];
        if (hit) return hit;
        if (proc.exitCode !== null || proc.signalCode !== null) {
          await Promise.race([stdoutClosed, Bun.sleep(500)]);
          const late = find(msg, svc)[0];
          if (late) return late;
          throw new Error(`the container exited (code ${proc.exitCode}) before logging "${msg}"; stderr: ${stderr}; logs: ${JSON.stringify(logs)}`);
        }
        if (Date.now() > until) throw new Error(`no "${msg}" log line after ${ms} ms; stderr: ${stderr}; logs: ${JSON.stringify(logs)}`);
        await Bun.sleep(25);
      }
    },
    async entrypointPid(ms = 10_000) {
      const until = Date.now() + ms;
      while (entrypoint === undefined) {
        entrypoint = findEntrypoint();
        if (entrypoint !== undefined) break;
        if (proc.exitCode !== null || Date.now() > until) throw new Error(`no entrypoint process under buildah run (pid ${proc.pid}); stderr: ${stderr}`);
        await Bun.sleep(25);
      }
      return entrypoint;
    },
    exited,
    async stop(signal = "SIGINT") {
      if (proc.exitCode === null && proc.signalCode === null) {
        remember();
        const pid = entrypoint ?? findEntrypoint();
        if (pid !== undefined && alive(pid)) process.kill(pid, signal);
        else proc.kill("SIGKILL");
      }
      return exited;
    },
  };
  self = handle;
  running.add(handle);
  // Record the processes as they appear, so that orphans can be found after a SIGKILL.
  const watcher = setInterval(() => (proc.exitCode === null ? remember() : clearInterval(watcher)), 250);
  void exited.finally(() => clearInterval(watcher));
  return handle;
}

async function fromImage(tag: string): Promise<string> {
  const name = `edgechat-e2e-${process.pid}-${++seq}`;
  return (await must(["buildah", "from", "--pull-never", "--name", name, tag])).trim();
}

/** Stops every image still running (SIGKILL after 10 s) and removes its working container. */
export async function stopAllImages(): Promise<void> {
  await Promise.all(
    [...running].map(async (r) => {
      const timer = setTimeout(() => r.proc.kill("SIGKILL"), 10_000);
      await r.stop("SIGTERM");
      clearTimeout(timer);
    }),
  );
}
