// npm start's entrypoint: server and sidecar together, signals to both, restarts, exit codes.
import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function startSupervisor(env: Record<string, string>) {
  const lines: Record<string, unknown>[] = [];
  const proc = Bun.spawn([process.execPath, join(ROOT, "app/supervisor.ts")], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      EDGECHAT_HOST: "127.0.0.1",
      EDGECHAT_DATA_DIR: mkdtempSync(join(tmpdir(), "edgechat-sup-")),
      ...env,
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  void (async () => {
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += new TextDecoder().decode(chunk);
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        try {
          lines.push(JSON.parse(buf.slice(0, nl)));
        } catch {}
        buf = buf.slice(nl + 1);
      }
    }
  })();
  const find = (msg: string, svc?: string) => lines.filter((l) => l.msg === msg && (!svc || l.svc === svc));
  return { proc, lines, find };
}

test("starts server and sidecar, restarts a dead sidecar, and stops both on SIGTERM with exit 0", async () => {
  const [port, metrics, sidecarPort] = [await freePort(), await freePort(), await freePort()];
  const sup = startSupervisor({ PORT: String(port), EDGECHAT_METRICS_ADDR: `127.0.0.1:${metrics}`, EDGECHAT_SIDECAR_ADDR: `127.0.0.1:${sidecarPort}` });
  await eventually(() => sup.find("listening", "edgechat").length === 1 && sup.find("sidecar listening").length === 1, 15000, "both up");
  const body = await eventually(
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${sidecarPort}/metrics`)).text();
      return text.includes("go_goroutines{") && text;
    },
    5000,
    "sidecar serving translated metrics",
  );
  expect(body).toContain("edgechat_sidecar_target_up{");

  const [first] = sup.find("sidecar started");
  process.kill(first.pid as number, "SIGKILL");
  await eventually(() => sup.find("sidecar started").length === 2, 10000, "sidecar restarted");
  await eventually(async () => (await fetch(`http://127.0.0.1:${sidecarPort}/metrics`)).ok, 10000, "restarted sidecar serving");

  sup.proc.kill("SIGTERM");
  expect(await sup.proc.exited).toBe(0);
  expect(sup.find("drained", "edgechat").length).toBe(1);
  expect(sup.find("sidecar stopping").length).toBe(1);
}, 40000);

test("a server that dies on its own ends the supervisor with a non-zero code", async () => {
  const sup = startSupervisor({
    PORT: String(await freePort()),
    EDGECHAT_METRICS_ADDR: `127.0.0.1:${await freePort()}`,
    EDGECHAT_SIDECAR_ADDR: `127.0.0.1:${await freePort()}`,
  });
  await eventually(() => sup.find("server started").length === 1 && sup.find("listening", "edgechat").length === 1, 15000, "server up");
  process.kill(sup.find("server started")[0].pid as number, "SIGKILL");
  expect(await sup.proc.exited).not.toBe(0);
  expect(sup.find("server exited")[0]).toMatchObject({ level: "error", requested: false });
}, 30000);
