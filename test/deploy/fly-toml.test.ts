// fly.toml, read with a TOML parser, against what the code and the Dockerfile actually do.
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { loadConfig } from "../../app/config.ts";
import { ROOT } from "../support/server.ts";

const fly = parse(readFileSync(join(ROOT, "fly.toml"), "utf8")) as any;
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const defaults = loadConfig({});

test("the public port is the server's default and the image's", () => {
  expect(fly.http_service.internal_port).toBe(defaults.port);
  expect(fly.env.PORT).toBe(String(defaults.port));
  expect(dockerfile).toContain(`PORT=${defaults.port}`);
  expect(dockerfile).toMatch(new RegExp(`EXPOSE ${defaults.port} `));
});

test("[metrics] scrapes the sidecar's port and path", () => {
  const sidecarPort = Number(/EDGECHAT_SIDECAR_ADDR=[\d.]+:(\d+)/.exec(dockerfile)?.[1]);
  expect(fly.metrics).toEqual({ port: sidecarPort, path: "/metrics" });
  expect(fly.env.EDGECHAT_SIDECAR_ADDR).toBe(`0.0.0.0:${sidecarPort}`);
  const sidecar = readFileSync(join(ROOT, "sidecar/main.ts"), "utf8");
  expect(sidecar).toContain(`"0.0.0.0:${sidecarPort}"`);
});

test("the edge speaks h2c to the app, TLS offers h2 and http/1.1", () => {
  expect(fly.http_service.http_options.h2_backend).toBe(true);
  expect(fly.http_service.tls_options.alpn).toEqual(["h2", "http/1.1"]);
  expect(fly.http_service.force_https).toBe(true);
});

test("the health check asks a route the server has", () => {
  const [check] = fly.http_service.checks;
  expect(check.path).toBe("/healthz");
  expect(readFileSync(join(ROOT, "app/transport/http.ts"), "utf8")).toContain(`app.get("${check.path}"`);
});

test("kill_signal is what the supervisor drains on, and kill_timeout leaves room for the drain", () => {
  expect(["SIGINT", "SIGTERM"]).toContain(fly.kill_signal);
  expect(dockerfile).toContain(`STOPSIGNAL ${fly.kill_signal}`);
  const drain = Number(fly.env.EDGECHAT_DRAIN_SECONDS ?? defaults.drainSeconds);
  expect(drain).toBe(defaults.drainSeconds);
  expect(fly.kill_timeout).toBeGreaterThan(drain);
});

test("one shared-cpu-1x machine with 256 MB, and concurrency as docs/deploy.md computes it from the measured cost", () => {
  const [vm] = fly.vm;
  expect(vm.size).toBe("shared-cpu-1x");
  expect(vm.memory).toBe("256mb");
  const { soft_limit, hard_limit, type } = fly.http_service.concurrency;
  expect(type).toBe("connections");
  // docs/deploy.md: hard_limit = (memory - at rest - a fifth of memory) / the most expensive stream's
  // cost (bench/capacity.ts), rounded down to 500; soft_limit 3/4 of it, rounded down to 500.
  const deploy = readFileSync(join(ROOT, "docs/deploy.md"), "utf8");
  const m = /hard_limit = \((\d+) MiB - ([\d.]+) MiB at rest - ([\d.]+) MiB headroom\) \/ ([\d.]+) KiB = /.exec(deploy);
  expect(m).not.toBeNull();
  const [memory, rest, headroom, perStream] = m!.slice(1).map(Number);
  expect(`${memory}mb`).toBe(vm.memory);
  expect(headroom).toBeCloseTo(memory / 5, 5);
  const perKind = [...deploy.matchAll(/^\| .+ \| [\d.]+ MiB \| [\d.]+ MiB \| ([\d.]+) KiB \|$/gm)].map((x) => Number(x[1]));
  expect(perKind.length).toBeGreaterThanOrEqual(5);
  // The most expensive single kind (the last row is the mix).
  expect(perStream).toBe(Math.max(...perKind.slice(0, -1)));
  expect(hard_limit).toBe(Math.floor(((memory - rest - headroom) * 1024) / perStream / 500) * 500);
  expect(soft_limit).toBe(Math.floor((hard_limit * 3) / 4 / 500) * 500);
});

test("behind Fly's proxy every client comes from its few addresses: no per-address caps", () => {
  expect(fly.env.EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS).toBe("0");
  expect(fly.env.EDGECHAT_MAX_STREAMS_PER_ADDRESS).toBe("0");
});

test("the embedded store's volume is where the image keeps its data", () => {
  expect(fly.mounts.destination).toBe("/data");
  expect(dockerfile).toContain("EDGECHAT_DATA_DIR=/data");
});

test("the image's Bun is package.json's Bun", () => {
  expect(dockerfile).toContain(`ARG BUN_VERSION=${pkg.devDependencies.bun}`);
});

test("bun.lock (what the image installs from) matches package-lock.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-lock-"));
  for (const f of ["package.json", "package-lock.json"]) copyFileSync(join(ROOT, f), join(dir, f));
  const run = Bun.spawnSync([process.execPath, "install", "--lockfile-only"], {
    cwd: dir,
    env: { ...process.env, BUN_INSTALL_CACHE_DIR: join(dir, ".cache") },
  });
  expect(run.exitCode).toBe(0);
  expect(readFileSync(join(dir, "bun.lock"), "utf8")).toBe(readFileSync(join(ROOT, "bun.lock"), "utf8"));
});
