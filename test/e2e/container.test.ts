// The container image as Fly runs it: built from the project's Dockerfile as it is (on a local
// stand-in for oven/bun, deploy/standin/build-standin.sh), then its ENTRYPOINT run with the image's
// USER, WORKDIR and ENV plus what a Fly machine sets. Needs root and buildah + debootstrap (installed
// with apt-get when missing); skipped loudly without them, except under CI=true, where it fails.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { Code } from "@connectrpc/connect";
import { chatClient, openChat, transport, failure } from "../support/clients.ts";
import {
  alive,
  buildahAvailable,
  buildImage,
  cmdline,
  descendants,
  ensureStandin,
  imageConfig,
  imageHealthcheck,
  PACKAGES,
  runImage,
  stopAllImages,
  type RunningImage,
} from "../support/image.ts";
import { freePort } from "../support/prometheus.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";

const TAG = "edgechat:test";
const CI = process.env.CI === "true" || process.env.CI === "1";
const availability = await buildahAvailable();
if (!availability.ok && !CI) {
  const bar = "!".repeat(100);
  console.warn(
    `\n${bar}\n!! SKIPPING test/e2e/container.test.ts: ${availability.reason}\n!! The container image is NOT tested. Run as root with: apt-get install -y ${PACKAGES.join(" ")}\n${bar}\n`,
  );
}
const suite = availability.ok || CI ? describe : describe.skip;

afterAll(async () => {
  await stopAllImages();
});

/** Ports on the host's loopback (buildah run shares the host network) and a Fly machine's env. */
async function flyEnv(extra: Record<string, string> = {}) {
  const ports = { http: await freePort(), metrics: await freePort(), sidecar: await freePort() };
  const env: Record<string, string> = {
    PORT: String(ports.http),
    EDGECHAT_HOST: "127.0.0.1",
    EDGECHAT_METRICS_ADDR: `127.0.0.1:${ports.metrics}`,
    EDGECHAT_SIDECAR_ADDR: `127.0.0.1:${ports.sidecar}`,
    FLY_REGION: "nrt",
    FLY_MACHINE_ID: "e2e1234",
    FLY_APP_NAME: "edgechat-e2e",
    ...extra,
  };
  return { ports, env };
}

/** Uid and gid lines of /proc/<pid>/status: [real, effective, saved, filesystem]. */
function ids(pid: number): { uid: number[]; gid: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const nums = (key: string) =>
    /^\w+:\s+(.*)$/m
      .exec(status.split("\n").find((l) => l.startsWith(`${key}:`)) ?? "")![1]
      .trim()
      .split(/\s+/)
      .map(Number);
  return { uid: nums("Uid"), gid: nums("Gid") };
}

suite("container image (buildah, chroot isolation)", () => {
  let built = false;

  test("buildah and debootstrap are available", () => {
    if (!availability.ok) throw new Error(`CI=true, so this must not be skipped: ${availability.reason}`);
  });

  test("the stand-in base image and the project's Dockerfile build", async () => {
    if (!availability.ok) throw new Error(availability.reason);
    let t = Date.now();
    const standinLog = await ensureStandin();
    console.log(`stand-in oven/bun ready in ${((Date.now() - t) / 1000).toFixed(1)} s:\n${standinLog.trim()}`);
    t = Date.now();
    const image = await buildImage(TAG);
    console.log(`image ${TAG} is ${image.size} (built in ${(image.ms / 1000).toFixed(1)} s, id ${image.id.slice(0, 12)})`);
    expect(image.output).toContain("bun install");

    const config = await imageConfig(TAG);
    expect(config.User).toBe("bun");
    expect(config.WorkingDir).toBe("/home/bun/app");
    expect(config.Entrypoint).toEqual(["bun", "dist/app/supervisor.js"]);
    expect(config.StopSignal).toBe("SIGINT");
    expect(Object.keys(config.Volumes ?? {})).toEqual(["/data"]);
    expect(config.Env).toContain("EDGECHAT_REQUIRE_AUTH=1");
    expect((await imageHealthcheck(TAG))?.Test?.[0]).toBe("CMD");
    built = true;
  }, 600_000);

  describe("a production run (SIGINT at the end)", () => {
    let c: RunningImage;
    let ports: { http: number; metrics: number; sidecar: number };
    let base: string;

    test("starts: /readyz answers 200", async () => {
      if (!built) throw new Error("the image was not built");
      const fly = await flyEnv({ EDGECHAT_JWT_SECRET: TEST_SECRET });
      ports = fly.ports;
      base = `http://127.0.0.1:${ports.http}`;
      c = await runImage(TAG, fly.env);
      const listening = await c.waitFor("listening", "edgechat", 30_000);
      expect(listening).toMatchObject({ port: ports.http, host: "127.0.0.1", region: "nrt", auth: "jwt" });
      await c.waitFor("sidecar listening", "edgechat-sidecar", 15_000);
      const res = await fetch(`${base}/readyz`);
      expect(res.status).toBe(200);
    }, 60_000);

    test("chat round trip over gRPC with a signed token; no token is Unauthenticated", async () => {
      if (!c) throw new Error("not running");
      const client = chatClient(transport(base, "grpc"));
      const room = "container-e2e";
      const listener = openChat(client, undefined, bearer(await mintToken("e2e-listener")));
      try {
        await listener.send({ kind: { case: "join", value: { room } } });
        await listener.reader.until((r) => r.of("joined").some((j) => j.room === room), 10_000, "joined");
        expect(listener.reader.of("ready")[0].user).toBe("e2e-listener");

        const text = `hello from the image ${Date.now()}`;
        const sent = await client.send({ target: { case: "room", value: room }, text }, { headers: bearer(await mintToken("e2e-sender")) });
        expect(sent.message?.from).toBe("e2e-sender");
        const history = await client.history({ room }, { headers: bearer(await mintToken("e2e-reader")) });
        const stored = history.messages.find((m) => m.text === text);
        expect(stored?.from).toBe("e2e-sender");
        expect(stored?.seq).toBe(sent.message?.seq);
        const got = await listener.reader.until((r) => r.messages(room).find((m) => m.text === text), 10_000, "message on the Chat stream");
        expect(got.from).toBe("e2e-sender");

        const refused = await failure(client.send({ target: { case: "room", value: room }, text: "anonymous" }));
        expect(refused.code).toBe(Code.Unauthenticated);
      } finally {
        listener.close();
        await listener.reader.finished;
      }
    }, 30_000);

    test("the sidecar's scrape carries the Fly identity labels", async () => {
      if (!c) throw new Error("not running");
      const body: string = await eventually(
        async () => {
          const text = await (await fetch(`http://127.0.0.1:${ports.sidecar}/metrics`)).text();
          return text.includes("go_goroutines{") ? text : "";
        },
        10_000,
        "go_goroutines on the sidecar",
      );
      const line = body.split("\n").find((l) => l.startsWith("go_goroutines{"))!;
      for (const label of ['kubernetes_pod_name="nrt-e2e1234"', 'kubernetes_namespace="edgechat-e2e"', 'region="nrt"', 'machine="e2e1234"']) {
        expect(body).toContain(label);
        expect(line).toContain(label);
      }
    }, 20_000);

    test("runs as uid 1000 in the host's PID namespace, and /data is written as bun", async () => {
      if (!c) throw new Error("not running");
      const serverPid = (await c.waitFor("server started", "edgechat-supervisor")).pid as number;
      const sidecarPid = (await c.waitFor("sidecar started", "edgechat-supervisor")).pid as number;
      const entrypoint = await c.entrypointPid();
      // The logged pids are host pids: the processes are there, under buildah run, with their own argv.
      const under = descendants(c.proc.pid);
      expect(under).toContain(entrypoint);
      expect(under).toContain(serverPid);
      expect(under).toContain(sidecarPid);
      const [argv0, ...args] = cmdline(entrypoint) ?? [];
      expect(argv0).toMatch(/(^|\/)bun$/); // buildah resolves ENTRYPOINT["bun", ...] on PATH
      expect(args).toEqual(["dist/app/supervisor.js"]);
      expect(cmdline(serverPid)?.at(-1)).toBe("/home/bun/app/dist/app/main.js");
      expect(cmdline(sidecarPid)?.at(-1)).toBe("/home/bun/app/dist/sidecar/main.js");
      expect(readFileSync(`/proc/${serverPid}/status`, "utf8")).toMatch(/^NSpid:\s+\d+$/m);
      for (const pid of [entrypoint, serverPid, sidecarPid]) expect(ids(pid)).toEqual({ uid: [1000, 1000, 1000, 1000], gid: [1000, 1000, 1000, 1000] });
      // The chat message above went to SQLite under /data (the image's VOLUME), as bun.
      const data = `/proc/${serverPid}/root/data`;
      const files = readdirSync(data);
      expect(files).toContain("edgechat.db");
      for (const f of files) expect(statSync(`${data}/${f}`).uid).toBe(1000);
    }, 20_000);

    test("a sidecar killed with SIGKILL is restarted and serves again", async () => {
      if (!c) throw new Error("not running");
      const first = (await c.waitFor("sidecar started", "edgechat-supervisor")).pid as number;
      process.kill(first, "SIGKILL");
      await eventually(() => c.find("sidecar started", "edgechat-supervisor").length >= 2, 10_000, "a second sidecar started");
      const second = c.find("sidecar started", "edgechat-supervisor")[1].pid as number;
      expect(second).not.toBe(first);
      await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${ports.sidecar}/metrics`);
          return res.ok && (await res.text()).includes("go_goroutines{");
        },
        15_000,
        "the restarted sidecar serving /metrics",
      );
    }, 30_000);

    test("SIGINT (Fly's kill_signal) to the entrypoint: drained, both processes gone, exit 0 within 5 s", async () => {
      if (!c) throw new Error("not running");
      const serverPid = c.find("server started", "edgechat-supervisor")[0].pid as number;
      const sidecarPid = c.find("sidecar started", "edgechat-supervisor").at(-1)!.pid as number;
      // A client on an open stream while the machine stops.
      const client = chatClient(transport(base, "grpc"));
      const open = openChat(client, undefined, bearer(await mintToken("e2e-late")));
      await open.send({ kind: { case: "join", value: { room: "container-e2e" } } });
      await open.reader.until((r) => r.of("joined").length > 0, 10_000, "joined");

      const started = Date.now();
      const stopped = c.stop("SIGINT");
      const code = await c.proc.exited;
      const ms = Date.now() - started;
      console.log(`SIGINT to exit: ${ms} ms`);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(5000);
      expect(alive(serverPid)).toBe(false);
      expect(alive(sidecarPid)).toBe(false);
      await stopped;
      await open.reader.finished;
      expect(c.find("stopping", "edgechat-supervisor")[0]).toMatchObject({ signal: "SIGINT" });
      expect(c.find("drained", "edgechat")).toHaveLength(1);
      expect(c.find("sidecar stopping").length).toBeGreaterThanOrEqual(1);
      expect(c.find("server exited", "edgechat-supervisor")[0]).toMatchObject({ code: 0, requested: true });
    }, 20_000);
  });

  test("a server killed with SIGKILL ends the supervisor with a non-zero code", async () => {
    if (!built) throw new Error("the image was not built");
    const { env } = await flyEnv({ EDGECHAT_JWT_SECRET: TEST_SECRET });
    const c = await runImage(TAG, env);
    await c.waitFor("listening", "edgechat", 30_000);
    const serverPid = (await c.waitFor("server started", "edgechat-supervisor")).pid as number;
    const sidecarPid = (await c.waitFor("sidecar started", "edgechat-supervisor")).pid as number;
    process.kill(serverPid, "SIGKILL");
    const code = await c.proc.exited;
    expect(code).not.toBe(0);
    expect(c.find("server exited", "edgechat-supervisor")[0]).toMatchObject({ level: "error", requested: false });
    expect(alive(sidecarPid)).toBe(false);
    await c.exited;
  }, 60_000);

  test("without EDGECHAT_JWT_SECRET the server refuses to start and the supervisor exits non-zero", async () => {
    if (!built) throw new Error("the image was not built");
    const { env } = await flyEnv();
    const c = await runImage(TAG, env);
    const code = await Promise.race([c.proc.exited, Bun.sleep(20_000).then(() => "timeout" as const)]);
    expect(code).not.toBe("timeout");
    expect(code).not.toBe(0);
    const refused = c.find("cannot start", "edgechat")[0];
    expect(refused).toMatchObject({ level: "error" });
    expect(JSON.stringify(refused.err)).toContain("EDGECHAT_REQUIRE_AUTH");
    expect(c.find("listening", "edgechat")).toHaveLength(0);
    expect(c.find("server exited", "edgechat-supervisor")[0]).toMatchObject({ level: "error", code: 1, requested: false });
    await c.exited;
  }, 40_000);
});
