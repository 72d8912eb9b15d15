// `edgechat metrics`: a person's summary of a sidecar, with the server up and then down.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { chatClient, transport } from "../support/clients.ts";
import { startSidecar, stopAll } from "../support/prometheus.ts";
import { ROOT, startServer } from "../support/server.ts";

afterAll(() => stopAll());

// Not spawnSync: the test's own traffic must keep flowing while the command measures rates.
const run = async (url: string) => {
  const p = Bun.spawn([process.execPath, join(ROOT, "app/cli/main.ts"), "metrics", url], { cwd: ROOT, stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  return { code: await p.exited, out };
};

test("summarizes goroutines, GC, heap, sessions and message rates; says when the server is down", async () => {
  const server = await startServer();
  const sidecar = await startSidecar({ EDGECHAT_SIDECAR_TARGET: server.metricsUrl, FLY_REGION: "fra", FLY_MACHINE_ID: "m9" });
  const client = chatClient(transport(server.url, "connect"));
  const sending = (async () => {
    for (let i = 0; i < 30; i++) {
      await client.send({ target: { case: "room", value: "cli" }, text: `m${i}` }, { headers: { "x-user": `u${i}` } });
      await Bun.sleep(40);
    }
  })();
  const up = await run(sidecar.url);
  await sending;
  expect(up.code).toBe(0);
  expect(up.out).toContain("fra-m9  (server up)");
  expect(up.out).toMatch(/goroutines\s+\d+\s+threads \d+/);
  expect(up.out).toMatch(/heap\s+[\d.]+ MiB in use of [\d.]+ MiB/);
  const rate = Number(/messages\/s\s+([\d.]+) accepted/.exec(up.out)?.[1]);
  expect(rate).toBeGreaterThan(0);

  await server.stop();
  const down = await run(sidecar.url);
  expect(down.out).toContain("fra-m9  (server DOWN)");
  await sidecar.stop();
}, 30_000);
