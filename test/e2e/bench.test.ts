// The benchmark harness in its smallest form (bench/run.ts --smoke): every contender starts, every
// scenario runs against it and yields numbers. No timing threshold: the numbers are only checked to
// exist (a figure that is 0 or missing means a scenario did not run), never compared to a budget.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../support/server.ts";

const out = mkdtempSync(join(tmpdir(), "edgechat-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const CONTENDERS = ["edgechat", "grpc-js", "socket.io"];
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

test("bench --smoke: every contender ran every scenario and produced numbers", async () => {
  const proc = Bun.spawn([process.execPath, join(ROOT, "bench/run.ts"), "--smoke", "--out", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const file = readdirSync(out).find((f) => f.endsWith(".json"));
  expect(file, `no results written; stderr:\n${stderr}`).toBeDefined();
  const report = JSON.parse(readFileSync(join(out, file!), "utf8"));

  const errors = report.runs.filter((r: any) => r.error).map((r: any) => `${r.key} ${r.contender}: ${r.error}`);
  expect(errors, stderr).toEqual([]);
  expect(code).toBe(0);
  expect(report.contenders).toEqual(CONTENDERS);
  expect(report.machine.before.nproc).toBeGreaterThan(0);

  const run = (key: string, contender: string) => {
    const r = report.runs.find((x: any) => x.key === key && x.contender === contender);
    expect(r?.result, `${key} ${contender} has no result`).toBeDefined();
    return r.result;
  };
  for (const c of CONTENDERS) {
    for (const s of report.config.fanout.subscribers) {
      const r = run(`S=${s}`, c);
      for (const p of [r.saturation, r.fixed]) {
        expect(p.deliveriesPerSec, `S=${s} ${c}`).toBeGreaterThan(0);
        for (const k of ["p50", "p90", "p99", "serverCpu", "loadgenCpu"]) expect(isNum(p[k]), `S=${s} ${c} ${k}`).toBe(true);
      }
    }
    const rooms = run("rooms", c);
    expect(rooms.deliveries).toBeGreaterThan(0);
    expect(isNum(rooms.p99)).toBe(true);
    const idle = run("idle", c);
    expect(idle.points.length).toBe(report.config.idle.steps.length + 1);
    expect(isNum(idle.perStreamKiB)).toBe(true);
    expect(run("cold", c).medianMs).toBeGreaterThan(0);
  }
  const sidecar = run("sidecar", "edgechat");
  expect(sidecar.medianMs).toBeGreaterThan(0);
  expect(sidecar.seriesIn).toBeGreaterThanOrEqual(1900);
  expect(sidecar.seriesOut).toBeGreaterThanOrEqual(sidecar.seriesIn);

  // The summary has a number for every figure and contender, "n/a" only where a scenario does
  // not apply (the sidecar is edgechat's alone), and the markdown table lists them.
  for (const f of report.figures) {
    for (const c of CONTENDERS) {
      const v = f.values[c];
      if (f.scenario === "sidecar" && c !== "edgechat") expect(v).toBe("n/a");
      else expect(isNum(v), `${f.key} ${f.figure} ${c}: ${v}`).toBe(true);
    }
  }
  expect(stdout).toContain("| scenario | figure | edgechat | grpc-js | socket.io |");
}, 240_000);

test("bench --smoke with every other kind of subscriber stream: each delivers everything in fan-out and many rooms", async () => {
  const kinds = ["edgechat:grpc-chat", "edgechat:connect-subscribe", "edgechat:grpc-web-subscribe", "edgechat:ws"];
  const dir = mkdtempSync(join(tmpdir(), "edgechat-bench-kinds-"));
  try {
    const proc = Bun.spawn(
      [process.execPath, join(ROOT, "bench/run.ts"), "--smoke", "--scenarios", "fanout,rooms", "--contenders", kinds.join(","), "--out", dir],
      {
        cwd: ROOT,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    const file = readdirSync(dir).find((f) => f.endsWith(".json"));
    expect(file, `no results written; stderr:\n${stderr}`).toBeDefined();
    const report = JSON.parse(readFileSync(join(dir, file!), "utf8"));
    expect(
      report.runs.filter((r: any) => r.error).map((r: any) => `${r.key} ${r.contender}: ${r.error}`),
      stderr,
    ).toEqual([]);
    expect(code).toBe(0);
    expect(report.contenders).toEqual(kinds);
    for (const c of kinds) {
      for (const s of report.config.fanout.subscribers) {
        const r = report.runs.find((x: any) => x.key === `S=${s}` && x.contender === c)?.result;
        expect(r?.saturation.deliveriesPerSec, `S=${s} ${c}`).toBeGreaterThan(0);
        expect([c, s, r.saturation.lost + r.fixed.lost, r.subscribersEnded]).toEqual([c, s, 0, 0]);
      }
      // Many rooms, where every subscriber also sends on its own stream or connection.
      const rooms = report.runs.find((x: any) => x.key === "rooms" && x.contender === c)?.result;
      expect([c, rooms?.deliveries > 0, rooms?.lost]).toEqual([c, true, 0]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);

test("bench/changes.ts in its smallest form: each kind of call ran and has numbers", async () => {
  const args = ["--subscribers", "2", "--callers", "4", "--calls", "40", "--rounds", "1"];
  const proc = Bun.spawn([process.execPath, join(ROOT, "bench/changes.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, stderr).toBe(0);
  const rows = stdout.split("\n").filter((l) => /^\| (send|edit|react|delete) \|/.test(l));
  expect(rows.map((r) => r.split("|")[1].trim())).toEqual(["send", "edit", "react", "delete"]);
  for (const r of rows) {
    const [callsPerSec, , , deliveries, , bytes] = r
      .split("|")
      .slice(2, 8)
      .map((c) => Number(c.trim().split(" ")[0].replaceAll(",", "")));
    expect(
      [callsPerSec, deliveries, bytes].every((n) => n > 0),
      r,
    ).toBe(true);
  }
}, 60_000);

test("bench/filter.ts in its smallest form: both servers ran and have numbers", async () => {
  const proc = Bun.spawn([process.execPath, join(ROOT, "bench/filter.ts"), "--callers", "4", "--calls", "40", "--rounds", "1"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, stderr).toBe(0);
  const rows = stdout.split("\n").filter((l) => /^\| (no filter|filter hook) \|/.test(l));
  expect(rows).toHaveLength(2);
  for (const r of rows) expect(Number(r.split("|")[2].trim().split(" ")[0]), r).toBeGreaterThan(0);
}, 60_000);
