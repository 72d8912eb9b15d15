// deploy/nats: the NATS app's fly.toml, read with a TOML parser, against the config template its
// machines run (the same template test/support/nats.ts runs as a 3-node cluster in regions.test.ts).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { DEPLOYED_CONFIG } from "../support/nats.ts";
import { ROOT } from "../support/server.ts";

const DIR = join(ROOT, "deploy/nats");
const fly = parse(readFileSync(join(DIR, "fly.toml"), "utf8")) as any;
const conf = readFileSync(DEPLOYED_CONFIG, "utf8");
const dockerfile = readFileSync(join(DIR, "Dockerfile"), "utf8");
// What the machine's environment has besides [env]: Fly sets FLY_MACHINE_ID; the password is a secret.
const FROM_FLY = new Set(["FLY_MACHINE_ID", "NATS_PASSWORD"]);
const variables = [...new Set([...conf.replace(/#.*$/gm, "").matchAll(/\$([A-Z_0-9]+)/g)].map((m) => m[1]))];

test("every variable of the template is set on Fly: by [env], by Fly, or as the documented secret", () => {
  expect(variables.length).toBeGreaterThan(5);
  for (const v of variables) expect([v, v in fly.env || FROM_FLY.has(v)]).toEqual([v, true]);
  expect(readFileSync(join(DIR, "fly.toml"), "utf8")).toContain("fly secrets set --app edgechat-nats NATS_PASSWORD=pw$(openssl rand -hex 24)");
});

test("the image runs the template; JetStream stores on the volume; one route per region", () => {
  expect(dockerfile).toContain("COPY nats.conf /etc/nats/nats.conf");
  expect(dockerfile).toMatch(/CMD \["nats-server", "--config", "\/etc\/nats\/nats.conf"\]/);
  expect(fly.build.dockerfile).toBe("Dockerfile");
  expect(fly.mounts).toHaveLength(1);
  expect(fly.env.NATS_STORE_DIR.startsWith(`${fly.mounts[0].destination}/`)).toBe(true);
  const routes = Object.keys(fly.env)
    .filter((k) => k.startsWith("NATS_ROUTE_"))
    .sort();
  expect(routes).toEqual(variables.filter((v) => v.startsWith("NATS_ROUTE_")).sort());
  for (const r of routes) expect(fly.env[r]).toMatch(new RegExp(`^nats-route://[a-z]{3}\\.${fly.app}\\.internal:${fly.env.NATS_CLUSTER_PORT}$`));
});

test("nothing is public; the health check asks the monitoring port", () => {
  expect(fly.http_service).toBeUndefined();
  expect(fly.services).toBeUndefined();
  expect(fly.checks.jetstream.port).toBe(Number(fly.env.NATS_HTTP_PORT));
  // The private network is IPv6: NATS listens on every address.
  expect(fly.env.NATS_HOST).toBe("::");
  expect(fly.checks.jetstream.path).toStartWith("/healthz");
});

/** nats-server's verdict on the template with Fly's values and this password. */
async function check(password: string): Promise<{ code: number; said: string }> {
  const env = { ...fly.env, FLY_MACHINE_ID: "e784079b449483", NATS_PASSWORD: password, PATH: process.env.PATH ?? "" };
  const p = Bun.spawn(["nats-server", "-t", "-c", DEPLOYED_CONFIG], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, said: (out + err).trim() };
}

test.skipIf(!Bun.which("nats-server"))("nats-server accepts the template with Fly's values", async () => {
  expect(await check("x".repeat(48))).toEqual({ code: 0, said: `nats-server: configuration file ${DEPLOYED_CONFIG} is valid` });
});

test.skipIf(!Bun.which("nats-server"))("a password that begins like a number stops nats-server; the documented pw prefix never does", async () => {
  // What `openssl rand -hex 24` gives a few times in a hundred: the reason for the prefix.
  for (const bad of ["1e5a0b", "64kb9f0", "12345678"]) expect((await check(bad)).code).not.toBe(0);
  for (const good of ["pw1e5a0b", "pw64kb9f0", "pw12345678"]) expect((await check(good)).code).toBe(0);
});
