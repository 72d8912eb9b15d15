// The benchmark harness (issue 7): edgechat against the servers a TypeScript team would otherwise run,
// side by side, on the same load. `npm run bench` is the quick form (under 2 minutes); `npm run bench --
// --full` the one docs/benchmarks.md shows; `--smoke` a few seconds per contender (the CI test).
//
// Each contender is a real server process started here, fresh for every scenario; one load generator
// process (bench/loadgen.mjs, under Node) drives them all. Contenders interleave (A B C A B C ...) for
// R rounds, and every figure is the median over the rounds, with its ratio edgechat ÷ contender.
// Options: --smoke | --full, --rounds N, --contenders a,b, --scenarios fanout,rooms,idle,cold,sidecar,
// --out DIR (results there instead of bench/results/, no charts, no docs), --charts, --library-senders
// (fan-out senders use each server's client library instead of the wire-level client), --render FILE
// (no run: the markdown, charts and docs section again from a results file).
import { spawnSync, type Subprocess } from "bun";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { lineChart } from "./charts.ts";
import { LoadGen, lines } from "./loadgen-client.ts";

const ROOT = join(import.meta.dir, "..");
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
// --render FILE: no run, only the markdown, charts and docs from a results file written before.
const rendering = option("--render");
const saved = rendering ? JSON.parse(readFileSync(rendering, "utf8")) : undefined;
const mode: "smoke" | "quick" | "full" = saved?.mode ?? (flag("--smoke") ? "smoke" : flag("--full") ? "full" : "quick");

// ---------------------------------------------------------------- configuration

interface Config {
  rounds: number;
  fanout: { subscribers: number[]; senders: number; warmupMs: number; durationMs: number; fixedDeliveriesPerSec: number; maxRate: number };
  rooms: { rooms: number; perRoom: number; rate: number; warmupMs: number; durationMs: number };
  idle: { steps: number[]; settleMs: number };
  cold: { n: number };
  sidecar: { series: number; scrapes: number };
}

const CONFIGS: Record<typeof mode, Config> = {
  // The smoke form checks that every contender runs every scenario (the test suite runs it): one
  // subscriber count is enough for that, the other forms measure.
  smoke: {
    rounds: 1,
    fanout: { subscribers: [10], senders: 2, warmupMs: 50, durationMs: 200, fixedDeliveriesPerSec: 1000, maxRate: 100 },
    rooms: { rooms: 10, perRoom: 5, rate: 50, warmupMs: 50, durationMs: 200 },
    idle: { steps: [50, 100], settleMs: 200 },
    cold: { n: 1 },
    sidecar: { series: 2000, scrapes: 3 },
  },
  quick: {
    rounds: 1,
    fanout: { subscribers: [1, 10, 100], senders: 8, warmupMs: 500, durationMs: 1000, fixedDeliveriesPerSec: 5000, maxRate: 300 },
    rooms: { rooms: 100, perRoom: 5, rate: 200, warmupMs: 250, durationMs: 1500 },
    idle: { steps: [250, 500, 1000], settleMs: 600 },
    cold: { n: 3 },
    sidecar: { series: 2000, scrapes: 10 },
  },
  full: {
    rounds: 3,
    fanout: { subscribers: [1, 10, 100, 1000], senders: 8, warmupMs: 2000, durationMs: 5000, fixedDeliveriesPerSec: 5000, maxRate: 300 },
    rooms: { rooms: 1000, perRoom: 5, rate: 500, warmupMs: 2000, durationMs: 10000 },
    idle: { steps: [1000, 2500, 5000, 10000], settleMs: 2000 },
    cold: { n: 7 },
    sidecar: { series: 2000, scrapes: 20 },
  },
};
const config: Config = saved?.config ?? CONFIGS[mode];
if (option("--rounds")) config.rounds = Number(option("--rounds"));
const fixedRate = (s: number) => Math.max(1, Math.min(config.fanout.maxRate, Math.round(config.fanout.fixedDeliveriesPerSec / s)));

const SCENARIOS = ["fanout", "rooms", "idle", "cold", "sidecar"] as const;
type Scenario = (typeof SCENARIOS)[number];
const scenarios = (saved ? [...new Set(saved.runs.map((r: Run) => r.scenario))] : (option("--scenarios")?.split(",") ?? SCENARIOS)) as Scenario[];

// ---------------------------------------------------------------- contenders

interface Contender {
  name: string;
  cmd: string[];
  env(): Record<string, string>;
  /** The variable naming a data dir to create fresh for each process. */
  dataDirEnv?: string;
}

// edgechat runs as deployed: the production bundle (npm run build, made fresh here), or from the
// sources when the build fails.
function edgechatEntry(): string {
  if (saved) return join(ROOT, "app/main.ts");
  const build = spawnSync([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  const bundled = join(ROOT, "dist/app/main.js");
  if (build.exitCode === 0 && existsSync(bundled)) return bundled;
  console.error(`[bench] npm run build failed, running app/main.ts: ${build.stderr.toString().trim()}`);
  return join(ROOT, "app/main.ts");
}

const baseEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };
const CONTENDERS: Contender[] = [
  {
    name: "edgechat",
    cmd: [process.execPath, edgechatEntry()],
    // Every client of the bench comes from 127.0.0.1, as behind a proxy: no per-address caps.
    env: () => ({
      ...baseEnv,
      EDGECHAT_HOST: "127.0.0.1",
      EDGECHAT_RATE_PER_SECOND: "0",
      EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS: "0",
      EDGECHAT_MAX_STREAMS_PER_ADDRESS: "0",
      EDGECHAT_METRICS_ADDR: "off",
      LOG_LEVEL: "info",
    }),
    dataDirEnv: "EDGECHAT_DATA_DIR",
  },
  { name: "grpc-js", cmd: ["node", join(ROOT, "bench/baselines/grpc-js-server.mjs")], env: () => ({ ...baseEnv }) },
  { name: "socket.io", cmd: ["node", join(ROOT, "bench/baselines/socketio-server.mjs")], env: () => ({ ...baseEnv }) },
];
// Not run unless named with --contenders: Bun's node:http2 alone, a floor for edgechat (see the file);
// and edgechat with subscribers of another kind than gRPC Subscribe ("edgechat:<kind>", the kinds of
// bench/loadgen.mjs: grpc-chat, connect-subscribe, grpc-web-subscribe, ws).
const STREAM_KINDS = ["grpc-chat", "connect-subscribe", "grpc-web-subscribe", "ws"];
const OPTIONAL: Contender[] = [
  { name: "bun-h2-floor", cmd: [process.execPath, join(ROOT, "bench/baselines/bun-h2-floor.ts")], env: () => ({ ...baseEnv }) },
  ...STREAM_KINDS.map((k) => ({ ...CONTENDERS[0], name: `edgechat:${k}` })),
];
const only = option("--contenders")?.split(",");
const known = [...CONTENDERS, ...OPTIONAL];
const contenders = saved ? known.filter((c) => saved.contenders.includes(c.name)) : only ? known.filter((c) => only.includes(c.name)) : CONTENDERS;

// ---------------------------------------------------------------- processes

const live = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

interface Running {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** Starts a process that logs a JSON line {msg: listeningMsg, port} once it serves. */
async function startProcess(cmd: string[], env: Record<string, string>, listeningMsg: string, dir?: string): Promise<Running> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  live.add(proc);
  let stderr = "";
  void lines(proc.stderr, (l) => (stderr = (stderr + l + "\n").slice(-4000)));
  const stop = async () => {
    proc.kill("SIGKILL");
    await proc.exited;
    live.delete(proc);
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd.join(" ")} did not start in 20 s; stderr: ${stderr}`)), 20_000);
      void lines(proc.stdout, (l) => {
        try {
          const e = JSON.parse(l);
          if (e.msg === listeningMsg) {
            clearTimeout(timer);
            resolve(e.port);
          }
        } catch {}
      }).then(() => reject(new Error(`${cmd.join(" ")} exited before listening; stderr: ${stderr}`)));
    });
    return { pid: proc.pid, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function startContender(c: Contender): Promise<Running> {
  const dir = c.dataDirEnv ? mkdtempSync(join(tmpdir(), "edgechat-bench-")) : undefined;
  const env = { ...c.env(), PORT: "0", ...(dir ? { [c.dataDirEnv!]: dir } : {}) };
  return startProcess(c.cmd, env, "listening", dir);
}

// ---------------------------------------------------------------- running

interface Run {
  round: number;
  scenario: Scenario;
  /** The scenario's variant: "S=100" for fan-out, else the scenario's name. */
  key: string;
  contender: string;
  result?: any;
  error?: string;
}

const sh = (cmd: string[]) => spawnSync(cmd).stdout.toString().trim();
const machine = () => ({
  nproc: Number(sh(["nproc"])),
  cpuModel: cpus()[0]?.model,
  memTotalMiB: Math.round(totalmem() / 1048576),
  loadavg: loadavg().map((x) => +x.toFixed(2)),
  kernel: sh(["uname", "-r"]),
});
const pkgVersion = (name: string) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;

const started = saved ? new Date(saved.started) : new Date();
const machineBefore = saved?.machine.before ?? machine();
const runs: Run[] = saved?.runs ?? [];
const lg = saved ? (undefined as unknown as LoadGen) : new LoadGen();
const T0 = performance.now();
const elapsed = () => ((performance.now() - T0) / 1000).toFixed(1) + "s";
const say = (s: string) => console.error(`[bench ${elapsed()}] ${s}`);
say(
  `${mode}: ${config.rounds} round(s), contenders ${contenders.map((c) => c.name).join(", ")}, scenarios ${scenarios.join(", ")}; nproc ${machineBefore.nproc}, load ${machineBefore.loadavg.join(" ")}`,
);

/** One scenario against one contender, on a fresh server process. */
async function against(round: number, scenario: Scenario, key: string, c: Contender, op: string, args: Record<string, unknown>, timeoutMs: number) {
  const run: Run = { round, scenario, key, contender: c.name };
  runs.push(run);
  let server: Running | undefined;
  try {
    server = await startContender(c);
    run.result = await lg.call(op, { kind: c.name, port: server.port, pid: server.pid, ...args }, timeoutMs);
  } catch (err) {
    run.error = String((err as Error).message ?? err);
  } finally {
    await server?.stop();
  }
  say(`round ${round} ${key} ${c.name}: ${run.error ? "ERROR " + run.error : brief(scenario, run.result)}`);
}

function brief(scenario: Scenario, r: any): string {
  if (scenario === "fanout")
    return `${r.saturation.deliveriesPerSec} deliveries/s (cpu ${r.saturation.serverCpu} vs loadgen ${r.saturation.loadgenCpu}), fixed p99 ${r.fixed?.p99} ms, lost ${r.saturation.lost + (r.fixed?.lost ?? 0)}`;
  if (scenario === "rooms") return `p50 ${r.p50} p99 ${r.p99} ms, ${r.deliveriesPerSec} deliveries/s, lost ${r.lost}`;
  if (scenario === "idle") return `${r.perStreamKiB} KiB/stream (${r.points.map((p: any) => `${p.streams}:${Math.round(p.rssKiB / 1024)}M`).join(" ")})`;
  if (scenario === "cold") return `${r.medianMs} ms (${r.samplesMs.join(", ")})`;
  return `${r.medianMs} ms (first ${r.firstMs}), ${r.seriesOut} series out`;
}

const { fanout, rooms, idle, cold, sidecar } = config;
for (let round = 1; !saved && round <= config.rounds; round++) {
  if (scenarios.includes("fanout")) {
    for (const s of fanout.subscribers) {
      const timeout = 60_000 + s * 100 + 4 * (fanout.warmupMs + fanout.durationMs);
      for (const c of contenders)
        await against(
          round,
          "fanout",
          `S=${s}`,
          c,
          "fanout",
          {
            subscribers: s,
            senders: fanout.senders,
            warmupMs: fanout.warmupMs,
            durationMs: fanout.durationMs,
            rate: fixedRate(s),
            librarySenders: flag("--library-senders"),
          },
          timeout,
        );
    }
  }
  if (scenarios.includes("rooms")) {
    for (const c of contenders) await against(round, "rooms", "rooms", c, "rooms", rooms, 120_000 + rooms.rooms * rooms.perRoom * 20);
  }
  if (scenarios.includes("idle")) {
    for (const c of contenders) await against(round, "idle", "idle", c, "idle", idle, 120_000 + idle.steps.at(-1)! * 30);
  }
  if (scenarios.includes("cold")) {
    for (const c of contenders) {
      const run: Run = { round, scenario: "cold", key: "cold", contender: c.name };
      runs.push(run);
      try {
        run.result = await lg.call(
          "cold",
          { kind: c.name, cmd: c.cmd[0], args: c.cmd.slice(1), env: c.env(), cwd: ROOT, dataDirEnv: c.dataDirEnv, n: cold.n },
          30_000 * cold.n,
        );
      } catch (err) {
        run.error = String((err as Error).message ?? err);
      }
      say(`round ${round} cold ${c.name}: ${run.error ? "ERROR " + run.error : brief("cold", run.result)}`);
    }
  }
  if (scenarios.includes("sidecar") && contenders.some((c) => c.name === "edgechat")) {
    const run: Run = { round, scenario: "sidecar", key: "sidecar", contender: "edgechat" };
    runs.push(run);
    let proc: Running | undefined;
    try {
      const target = await lg.call("targetStart", { series: sidecar.series }, 10_000);
      proc = await startProcess(
        [process.execPath, join(ROOT, "sidecar/main.ts")],
        {
          ...baseEnv,
          EDGECHAT_SIDECAR_ADDR: "127.0.0.1:0",
          EDGECHAT_SIDECAR_TARGET: target.url,
          EDGECHAT_SIDECAR_RELABEL: join(ROOT, "bench/sidecar-relabel.yaml"),
        },
        "sidecar listening",
      );
      run.result = {
        ...(await lg.call("scrape", { url: `http://127.0.0.1:${proc.port}/metrics`, pid: proc.pid, n: sidecar.scrapes }, 60_000)),
        seriesIn: target.series,
      };
    } catch (err) {
      run.error = String((err as Error).message ?? err);
    } finally {
      await proc?.stop();
      await lg.call("targetStop", {}, 10_000).catch(() => {});
    }
    say(`round ${round} sidecar edgechat: ${run.error ? "ERROR " + run.error : brief("sidecar", run.result)}`);
  }
}
if (!saved) await lg.close();

// ---------------------------------------------------------------- summary

const median = (xs: number[]) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

interface Figure {
  scenario: Scenario;
  key: string;
  figure: string;
  unit: string;
  better: "higher" | "lower" | "";
  /** contender -> median over rounds; null when it failed; "n/a" when it does not apply. */
  values: Record<string, number | null | "n/a">;
}

const figures: Figure[] = [];
function figure(
  scenario: Scenario,
  key: string,
  name: string,
  unit: string,
  better: Figure["better"],
  pick: (r: any) => number | undefined,
  appliesTo?: string[],
) {
  const values: Figure["values"] = {};
  for (const c of contenders) {
    if (appliesTo && !appliesTo.includes(c.name)) {
      values[c.name] = "n/a";
      continue;
    }
    const rs = runs.filter((r) => r.key === key && r.contender === c.name && r.result);
    const v = median(rs.map((r) => pick(r.result)).filter((x): x is number => typeof x === "number"));
    values[c.name] = v === null ? null : +v.toPrecision(4);
  }
  figures.push({ scenario, key, figure: name, unit, better, values });
}

if (scenarios.includes("fanout")) {
  for (const s of fanout.subscribers) {
    const k = `S=${s}`;
    figure("fanout", k, "deliveries/s, senders as fast as acks allow", "/s", "higher", (r) => r.saturation.deliveriesPerSec);
    figure("fanout", k, "latency p99 at that load", "ms", "lower", (r) => r.saturation.p99);
    figure("fanout", k, "server CPU at that load", "cores", "", (r) => r.saturation.serverCpu);
    figure("fanout", k, "load generator CPU at that load", "cores", "", (r) => r.saturation.loadgenCpu);
    figure("fanout", k, `latency p50 at ${fixedRate(s)} msg/s (${fixedRate(s) * s} deliveries/s offered)`, "ms", "lower", (r) => r.fixed?.p50);
    figure("fanout", k, `latency p99 at ${fixedRate(s)} msg/s`, "ms", "lower", (r) => r.fixed?.p99);
    figure("fanout", k, "server CPU at the fixed load", "cores", "", (r) => r.fixed?.serverCpu);
    figure("fanout", k, "load generator CPU at the fixed load", "cores", "", (r) => r.fixed?.loadgenCpu);
    figure("fanout", k, "messages lost or subscribers cut", "", "lower", (r) => r.saturation.lost + (r.fixed?.lost ?? 0) + r.subscribersEnded);
    figure("fanout", k, `time to open the ${s} subscriptions (all joined, quiet)`, "ms", "lower", (r) => r.setupMs);
  }
}
if (scenarios.includes("rooms")) {
  const k = "rooms";
  const label = `${rooms.rooms} rooms × ${rooms.perRoom} users, ${rooms.rate} msg/s`;
  figure("rooms", k, `${label}: latency p50`, "ms", "lower", (r) => r.p50);
  figure("rooms", k, "latency p90", "ms", "lower", (r) => r.p90);
  figure("rooms", k, "latency p99", "ms", "lower", (r) => r.p99);
  figure("rooms", k, "server CPU", "cores", "", (r) => r.serverCpu);
  figure("rooms", k, "load generator CPU", "cores", "", (r) => r.loadgenCpu);
  figure("rooms", k, "server RSS with every user connected", "MiB", "lower", (r) => r.serverRssKiB / 1024);
  figure("rooms", k, "messages lost or users cut", "", "lower", (r) => r.lost + r.subscribersEnded);
  figure("rooms", k, `time to connect the ${rooms.rooms * rooms.perRoom} users (all joined, quiet)`, "ms", "lower", (r) => r.setupMs);
}
if (scenarios.includes("idle")) {
  figure("idle", "idle", `RSS per idle stream (0 to ${idle.steps.at(-1)} streams)`, "KiB", "lower", (r) => r.perStreamKiB);
  figure("idle", "idle", "RSS with no stream", "MiB", "lower", (r) => r.baseRssKiB / 1024);
  figure("idle", "idle", `RSS with ${idle.steps.at(-1)} idle streams`, "MiB", "lower", (r) => r.points.at(-1).rssKiB / 1024);
}
if (scenarios.includes("cold")) {
  figure("cold", "cold", "cold start: spawn to first successful Send", "ms", "lower", (r) => r.medianMs);
  figure("cold", "cold", "spawn to port open", "ms", "lower", (r) => r.listenMedianMs);
}
if (scenarios.includes("sidecar")) {
  figure("sidecar", "sidecar", `one scrape + relabel of ${sidecar.series} series (warm median)`, "ms", "lower", (r) => r.medianMs, ["edgechat"]);
  figure("sidecar", "sidecar", "first scrape after start", "ms", "lower", (r) => r.firstMs, ["edgechat"]);
}

const ratio = (a: Figure["values"][string], b: Figure["values"][string]) =>
  typeof a === "number" && typeof b === "number" && b !== 0 ? +(a / b).toPrecision(3) : null;
const show = (v: Figure["values"][string]) =>
  v === "n/a" ? "n/a" : v === null || v === undefined ? "**failed**" : v >= 1000 ? Math.round(v).toLocaleString("en-US") : String(v);

const machineAfter = saved?.machine.after ?? machine();
const stamp = started.toISOString().replace(/:/g, "-").replace(/\..*/, "");
const command: string = saved?.command ?? `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`;
const isEdgechat = (name: string) => name === "edgechat" || name.startsWith("edgechat:");
const others = contenders.filter((c) => !isEdgechat(c.name)).map((c) => c.name);
// Every edgechat contender (each kind of subscriber stream) against every other server.
const pairs = contenders.filter((c) => isEdgechat(c.name)).flatMap((e) => others.map((o) => [e.name, o] as const));

function markdown(chartDir?: string): string {
  const out: string[] = [];
  out.push(
    `Run of ${started.toISOString().slice(0, 16).replace("T", " ")} UTC, \`${command}\`: ${config.rounds} round(s), medians over the rounds.`,
    `Machine: ${machineBefore.nproc} cores (\`nproc\`), ${machineBefore.cpuModel}, ${machineBefore.memTotalMiB} MiB; load average ${machineBefore.loadavg.join(", ")} before and ${machineAfter.loadavg.join(", ")} after (1, 5, 15 min). Bun ${versions.bun}, Node ${versions.node}.`,
    "",
    `| scenario | figure | ${contenders.map((c) => c.name).join(" | ")} | ${pairs.map(([e, o]) => `${e} ÷ ${o}`).join(" | ")} |`,
    `|---|---|${contenders.map(() => "--:").join("|")}|${pairs.map(() => "--:").join("|")}|`,
  );
  for (const f of figures) {
    const unit = f.unit ? ` (${f.unit})` : "";
    const ratios = pairs.map(([e, o]) => (f.better ? (ratio(f.values[e], f.values[o]) ?? "") : ""));
    out.push(`| ${f.key} | ${f.figure}${unit} | ${contenders.map((c) => show(f.values[c.name])).join(" | ")} | ${ratios.join(" | ")} |`);
  }
  out.push("", "Ratios are edgechat's figure divided by the contender's: above 1 is better for edgechat on throughput, below 1 on latency, memory and time.");
  if (chartDir) {
    out.push(
      "",
      `![fan-out latency CDF](${chartDir}/fanout-latency-cdf.svg)`,
      "",
      `![fan-out throughput](${chartDir}/fanout-throughput.svg)`,
      "",
      `![RSS against idle sessions](${chartDir}/idle-rss.svg)`,
    );
  }
  return out.join("\n") + "\n";
}

function charts(): Record<string, string> {
  const bigS = fanout.subscribers.at(-1)!;
  const med = (xs: number[]) => median(xs) ?? NaN;
  const ok = (key: string, c: string) => runs.filter((r) => r.key === key && r.contender === c && r.result);
  return {
    "fanout-latency-cdf.svg": lineChart({
      title: `Fan-out delivery latency, ${bigS} subscribers at ${fixedRate(bigS)} msg/s`,
      x: { label: "latency (ms, log)", log: true },
      y: { label: "fraction of deliveries" },
      series: contenders.map((c) => ({
        name: c.name,
        points: [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
          .map((p, i): [number, number] => [med(ok(`S=${bigS}`, c.name).map((r) => r.result.fixed?.cdf?.[i + 1])), p])
          .filter(([x]) => Number.isFinite(x)),
      })),
    }),
    "fanout-throughput.svg": lineChart({
      title: "Fan-out deliveries/s against subscribers (senders as fast as acks allow)",
      x: { label: "subscribers in the room (log)", log: true },
      y: { label: "deliveries/s" },
      series: contenders.map((c) => ({
        name: c.name,
        points: fanout.subscribers
          .map((s): [number, number] => [s, med(ok(`S=${s}`, c.name).map((r) => r.result.saturation.deliveriesPerSec))])
          .filter(([, y]) => Number.isFinite(y)),
      })),
    }),
    "idle-rss.svg": lineChart({
      title: "Server RSS against open idle streams",
      x: { label: "idle streams" },
      y: { label: "RSS (MiB)" },
      series: contenders.map((c) => ({
        name: c.name,
        points: [0, ...idle.steps]
          .map((n, i): [number, number] => [n, med(ok("idle", c.name).map((r) => r.result.points[i]?.rssKiB / 1024))])
          .filter(([, y]) => Number.isFinite(y)),
      })),
    }),
  };
}

const versions = saved?.versions ?? {
  bun: Bun.version,
  node: sh(["node", "--version"]).replace(/^v/, ""),
  "@connectrpc/connect-node": pkgVersion("@connectrpc/connect-node"),
  "@grpc/grpc-js": pkgVersion("@grpc/grpc-js"),
  "socket.io": pkgVersion("socket.io"),
  "socket.io-client": pkgVersion("socket.io-client"),
};
const outDir = option("--out") ?? join(ROOT, "bench/results");
mkdirSync(outDir, { recursive: true });
const wantCharts = !option("--out") && (mode === "full" || flag("--charts") || Boolean(saved));
const chartDir = wantCharts ? join(ROOT, "docs/bench") : undefined;
const md = markdown(wantCharts ? "bench" : undefined);
const report = {
  version: 1,
  mode,
  command,
  started: started.toISOString(),
  seconds: saved?.seconds ?? +((performance.now() - T0) / 1000).toFixed(1),
  machine: { before: machineBefore, after: machineAfter },
  versions,
  config,
  contenders: contenders.map((c) => c.name),
  figures,
  runs,
};
const json = JSON.stringify(report, null, 1) + "\n";
if (!saved) {
  writeFileSync(join(outDir, `${stamp}.json`), json);
  writeFileSync(join(outDir, `${stamp}.md`), md);
}
if (chartDir) {
  mkdirSync(chartDir, { recursive: true });
  for (const [name, svg] of Object.entries(charts())) writeFileSync(join(chartDir, name), svg);
}
if (mode === "full" && !option("--out")) {
  writeFileSync(join(outDir, "latest-full.json"), json);
  // docs/benchmarks.md shows the latest full run between these markers.
  const doc = join(ROOT, "docs/benchmarks.md");
  const [begin, end] = ["<!-- bench:results:begin -->", "<!-- bench:results:end -->"];
  if (existsSync(doc)) {
    const text = readFileSync(doc, "utf8");
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i >= 0 && j > i) writeFileSync(doc, text.slice(0, i + begin.length) + "\n" + md + text.slice(j));
  }
}
console.log(md);
say(
  saved ? `rendered ${rendering}${chartDir ? `, charts in ${chartDir}` : ""}` : `done: ${join(outDir, stamp)}.json${chartDir ? `, charts in ${chartDir}` : ""}`,
);
process.exit(runs.some((r) => r.error) ? 1 : 0);
