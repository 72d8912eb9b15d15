// The Grafana dashboards of deploy/grafana/dashboards against real data: two servers in two
// regions, each with its metrics sidecar, chat traffic on both, a real Prometheus scraping the
// sidecars every second, and every PromQL expression of every panel run with the dashboard's
// template variables filled in the way Grafana fills them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import {
  killOnExit,
  promtoolCheckMetrics,
  startPrometheus,
  startSidecar,
  stopAll,
  type PrometheusProcess,
  type PromSample,
  type SidecarProcess,
} from "../support/prometheus.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";

const DASHBOARDS = join(ROOT, "deploy/grafana/dashboards");
const APP = "edgechat-test";
const REGIONS = [
  { region: "nrt", machine: "m1" },
  { region: "ams", machine: "m2" },
] as const;
const PODS = REGIONS.map((r) => `${r.region}-${r.machine}`);
// What Grafana puts for its built-in interval variables with the datasource's timeInterval of 15s
// (deploy/grafana/provisioning/datasources/prometheus.yml): $__rate_interval is at least 4 scrapes.
const BUILTINS: Record<string, string> = { __rate_interval: "1m", __interval: "15s", __range: "1h" };
const VERBOSE = Boolean(process.env.EDGECHAT_TEST_VERBOSE);

interface Site {
  region: string;
  server: ServerProcess;
  sidecar: SidecarProcess;
  /** Sends to room "lobby" on the Chat stream opened by openStreams(). */
  say?: (text: string) => void;
  delivered?: () => number;
}
const sites: Site[] = [];
let prom: PrometheusProcess | undefined;
const streams: { abort(): void }[] = [];
const dataDirs: string[] = [];

beforeAll(async () => {
  for (const { region, machine } of REGIONS) {
    const dataDir = mkdtempSync(join(tmpdir(), `edgechat-dashboards-${region}-`));
    dataDirs.push(dataDir);
    const server = await startServer(
      {
        FLY_REGION: region,
        EDGECHAT_JWT_SECRET: TEST_SECRET,
        EDGECHAT_RATE_PER_SECOND: "1",
        EDGECHAT_RATE_BURST: "3",
      },
      dataDir,
    );
    killOnExit(server.proc);
    const sidecar = await startSidecar({ EDGECHAT_SIDECAR_TARGET: server.metricsUrl, FLY_APP_NAME: APP, FLY_REGION: region, FLY_MACHINE_ID: machine });
    sites.push({ region, server, sidecar });
  }
  // A first round before Prometheus starts: it creates the series that only appear with their
  // first event (grpc_server_handled_total per code, edgechat_auth_failures_total), so that the
  // second round, after a first scrape, moves counters Prometheus already has a sample of.
  await Promise.all(sites.map((s) => openStreams(s)));
  await Promise.all(sites.map((s) => traffic(s, 1)));
  prom = await startPrometheus(sites.map((s) => s.sidecar.target));
  // Prometheus applies a new target list 5 s after it starts: the first scrape takes that long.
  await eventually(async () => (await prom!.query('up{job="edgechat-sidecar"} == 1')).length === sites.length, 20_000, "both sidecars scraped");
  expect((await prom.query("edgechat_sidecar_target_up == 1")).length).toBe(sites.length);
  await Promise.all(sites.map((s) => traffic(s, 2)));
  // Two scrapes of each target that started after the traffic: with the samples from before,
  // rate() over them sees the increase.
  const after = Date.now() / 1000;
  await eventually(
    async () => {
      const latest = await prom!.query('timestamp(up{job="edgechat-sidecar"})');
      return latest.length === sites.length && latest.every((s) => Number(s.value[1]) > after + 1);
    },
    20_000,
    "two scrapes after the traffic",
  );
}, 90_000);

afterAll(async () => {
  for (const c of streams) c.abort();
  await prom?.stop();
  await Promise.all(
    sites.map(async (s) => {
      await s.sidecar.stop();
      await s.server.stop();
    }),
  );
  await stopAll(); // whatever a failed beforeAll left half started
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** A Chat stream (gRPC) in room "lobby" and a Subscribe (gRPC-Web) to it, open until the end. */
async function openStreams(site: Site): Promise<void> {
  const grpc = chatClient(transport(site.server.url, "grpc"));
  const web = chatClient(transport(site.server.url, "grpc-web", "1.1"));
  const chat = openChat(grpc, undefined, bearer(await mintToken("ann")));
  streams.push(chat);
  await chat.send({ kind: { case: "join", value: { room: "lobby" } } });
  await chat.reader.until((r) => r.of("joined").length === 1);
  const abort = new AbortController();
  streams.push(abort);
  const sub = new Reader(web.subscribe({ rooms: ["lobby"] }, { headers: bearer(await mintToken("ben")), signal: abort.signal }));
  await sub.until((r) => r.of("joined").length === 1);
  site.say = (text) => chat.send({ kind: { case: "send", value: { target: { case: "room", value: "lobby" }, text } } });
  site.delivered = () => sub.messages("lobby").length;
}

/**
 * One round of a region's traffic: three messages from the Chat stream delivered live to the
 * subscriber, a fourth send refused by the rate limit (burst 3, refilled between rounds), a bad
 * History call (InvalidArgument), a call without credentials (Unauthenticated), one that succeeds.
 */
async function traffic(site: Site, round: number): Promise<void> {
  const ann = bearer(await mintToken("ann"));
  const grpc = chatClient(transport(site.server.url, "grpc"));
  const connect = chatClient(transport(site.server.url, "connect"));
  const before = site.delivered!();
  for (let i = 0; i < 3; i++) site.say!(`round ${round} from ${site.region}: ${i}`);
  await eventually(() => site.delivered!() === before + 3, 5000, "three messages delivered");
  const limited = await connect.send({ target: { case: "room", value: "lobby" }, text: "one too many" }, { headers: ann }).catch((e) => ConnectError.from(e));
  expect((limited as ConnectError).code).toBe(Code.ResourceExhausted);
  const bad = await grpc.history({ room: "bad room" }, { headers: ann }).catch((e) => ConnectError.from(e));
  expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
  const anonymous = await connect.listRooms({}).catch((e) => ConnectError.from(e));
  expect((anonymous as ConnectError).code).toBe(Code.Unauthenticated);
  await connect.listRooms({}, { headers: ann });
}

// ---- the dashboards, read as Grafana reads them ----

interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  multi?: boolean;
  includeAll?: boolean;
}
interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string; refId?: string; hide?: boolean }[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating?: { list: Variable[] };
}
interface Query {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARDS, file), "utf8")) as Dashboard }));
}

/** Every target's expression, panels inside rows (collapsed rows keep theirs in `panels`) included. */
function queriesOf(file: string, d: Dashboard): Query[] {
  const out: Query[] = [];
  const walk = (panels: Panel[] = []) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (t.expr && !t.hide) out.push({ dashboard: file, panel: p.title ?? "(untitled)", refId: t.refId ?? "?", expr: t.expr });
      }
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

const escapeRegex = (s: string) => s.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");

/**
 * Grafana's interpolation for the Prometheus datasource: a variable with several values, or one
 * that is multi or includeAll, becomes a regex (values escaped, several joined as (a|b)); a plain
 * single value goes in as is. The built-in interval variables get BUILTINS.
 */
function interpolate(expr: string, vars: Map<string, { values: string[]; regex: boolean }>): string {
  const out = expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (all, a, b, c) => {
    const name: string = a ?? b ?? c;
    if (name in BUILTINS) return BUILTINS[name]!;
    const v = vars.get(name);
    if (!v) throw new Error(`unknown variable $${name} in ${expr}`);
    if (v.values.length === 0) throw new Error(`variable $${name} has no values`);
    if (v.values.length > 1 && new RegExp(`[^=!~]=\\s*"[^"]*\\$\\{?${name}\\b`).test(expr)) {
      throw new Error(`$${name} has several values but ${expr} matches it with =, not =~`);
    }
    if (!v.regex && v.values.length === 1) return v.values[0]!;
    const escaped = v.values.map(escapeRegex);
    return escaped.length === 1 ? escaped[0]! : `(${escaped.join("|")})`;
  });
  if (out.includes("$")) throw new Error(`unresolved $ left in ${out}`);
  return out;
}

/**
 * Fills the dashboard's query variables in order (a later one may use an earlier one) from their
 * label_values() queries, asking Prometheus the way Grafana does: /api/v1/label/<l>/values with
 * match[]. Each variable gets all of its values, as if "All" were picked.
 */
async function resolveVariables(d: Dashboard): Promise<Map<string, { values: string[]; regex: boolean }>> {
  const vars = new Map<string, { values: string[]; regex: boolean }>();
  for (const v of d.templating?.list ?? []) {
    // A datasource picker: the provisioned Prometheus is the only (and default) one.
    if (v.type === "datasource") continue;
    if (v.type !== "query") throw new Error(`variable ${v.name} is of type ${v.type}, which this test cannot fill`);
    const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
    const m = /^\s*label_values\(\s*(?:([\s\S]*?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: not a label_values() query: ${q}`);
    const match = m[1] ? interpolate(m[1], vars) : undefined;
    const values = (await prom!.labelValues(m[2]!, match)).sort();
    vars.set(v.name, { values, regex: Boolean(v.multi || v.includeAll) });
  }
  return vars;
}

interface Ran extends Query {
  promql: string;
  result: PromSample[];
}

const variables: Record<string, Record<string, string[]>> = {};
let ran: Promise<Ran[]> | undefined;
/** Runs every query once, for all the tests that look at the results. */
const results = () => (ran ??= runAll());

async function runAll(): Promise<Ran[]> {
  const out: Ran[] = [];
  for (const { file, dashboard } of loadDashboards()) {
    const vars = await resolveVariables(dashboard);
    variables[file] = Object.fromEntries([...vars].map(([k, v]) => [k, v.values]));
    for (const q of queriesOf(file, dashboard)) {
      const promql = interpolate(q.expr, vars);
      out.push({ ...q, promql, result: await prom!.query(promql) });
    }
  }
  if (VERBOSE) {
    console.log(JSON.stringify(variables));
    for (const r of out) {
      const values = r.result.map(
        (s) =>
          `${s.metric.kubernetes_pod_name ?? s.metric.region ?? ""}${s.metric.reason ? "/" + s.metric.reason : ""}${s.metric.quantile ? "/q" + s.metric.quantile : ""}=${Number(s.value[1]).toPrecision(4)}`,
      );
      console.log(`${r.dashboard} | ${r.panel} ${r.refId} | ${r.result.length} | ${values.join(" ")}`);
    }
  }
  return out;
}

const LOOKUPS = "go_memstats_lookups_total";
const byRegion = (r: Ran) => new Map(r.result.map((s) => [s.metric.region!, Number(s.value[1])]));

test("the dashboards are there and resolve their datasource to the provisioned uid", () => {
  const files = loadDashboards();
  expect(files.map((f) => f.file)).toEqual(["edgechat-regions.json", "go-metrics-10826.json"]);
  for (const { file } of files) {
    const text = readFileSync(join(DASHBOARDS, file), "utf8");
    expect(text).not.toContain("${DS_");
    // Every datasource reference names uid "prometheus", or the regions dashboard's own
    // datasource picker (which defaults to the provisioned one and lets Fly's Grafana pick its
    // own), or none: the default datasource.
    const refs = [...text.matchAll(/"datasource":\s*(\{[^}]*\}|"[^"]*"|null)/g)].map((m) => m[1]);
    for (const ref of refs)
      expect(ref === "null" || ref === '"-- Grafana --"' || /"uid":\s*"(prometheus"|\$\{datasource|-- Grafana --")/.test(ref!)).toBe(true);
  }
});

test("template variables fill from label_values() with both machines and regions", async () => {
  await results();
  expect(variables["go-metrics-10826.json"]).toEqual({ namespace: [APP], pod: [...PODS].sort() });
  expect(variables["edgechat-regions.json"]).toEqual({ region: REGIONS.map((r) => r.region).sort() });
}, 30_000);

test("every query of dashboard 10826 returns data for both pods, except lookups_total", async () => {
  const go = (await results()).filter((r) => r.dashboard === "go-metrics-10826.json");
  expect(go.length).toBe(22);
  const empty = go.filter((r) => r.result.length === 0);
  // The Go client stopped exporting lookups in v1.20; edgechat has no honest counterpart.
  expect(empty.map((r) => r.expr)).toEqual([expect.stringContaining(LOOKUPS)]);
  for (const r of go) {
    if (r.expr.includes(LOOKUPS)) continue;
    expect({ q: r.promql, pods: [...new Set(r.result.map((s) => s.metric.kubernetes_pod_name))].sort() }).toEqual({ q: r.promql, pods: [...PODS].sort() });
  }
  // The dashboard's own flaw: other_sys minus itself, so always 0.
  const otherSys = go.filter((r) => /go_memstats_other_sys_bytes.*-\s*go_memstats_other_sys_bytes/s.test(r.expr));
  expect(otherSys.length).toBe(1);
  expect(otherSys[0]!.result.map((s) => s.value[1])).toEqual(["0", "0"]);
}, 30_000);

test("every query of the regions dashboard returns data for both regions", async () => {
  const mine = (await results()).filter((r) => r.dashboard === "edgechat-regions.json");
  expect(mine.length).toBe(12);
  for (const r of mine) {
    expect({ q: r.promql, regions: [...new Set(r.result.map((s) => s.metric.region))].sort() }).toEqual({ q: r.promql, regions: ["ams", "nrt"] });
  }
  const panel = (title: string, refId = "A") => mine.find((r) => r.panel === title && r.refId === refId)!;
  for (const region of ["nrt", "ams"]) {
    // A Chat and a Subscribe stream stay open in each region.
    expect(byRegion(panel("Open sessions")).get(region)).toBe(2);
    expect(byRegion(panel("Messages accepted")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("Deliveries")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("Delivery latency", "A")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("Delivery latency", "B")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("RPC error ratio")).get(region)).toBeGreaterThan(0);
    // 3 of the round's 4 completed unary calls failed; the streams are still open.
    expect(byRegion(panel("RPC error ratio")).get(region)).toBeCloseTo(0.75, 5);
    expect(byRegion(panel("Sidecar target up")).get(region)).toBe(1);
    expect(byRegion(panel("Tasks (go_goroutines)")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("Heap in use (go_memstats_heap_alloc_bytes)")).get(region)).toBeGreaterThan(0);
    expect(byRegion(panel("Rate-limited sends")).get(region)).toBeGreaterThan(0);
  }
  const auth = panel("Auth failures");
  // Every reason has a series from the start (at zero); only "missing" happened.
  const happened = auth.result.filter((s) => Number(s.value[1]) > 0);
  expect(happened.map((s) => `${s.metric.region}/${s.metric.reason}`).sort()).toEqual(["ams/missing", "nrt/missing"]);
  expect(auth.result.length).toBeGreaterThan(2);
}, 30_000);

test("promtool check metrics finds nothing to complain about in either sidecar's /metrics", async () => {
  for (const s of sites) {
    const res = await fetch(s.sidecar.url, { headers: { accept: "*/*" } });
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await promtoolCheckMetrics(await res.text())).toEqual([]);
  }
}, 30_000);
