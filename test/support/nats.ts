// Real nats-server processes for the tests (Debian's /usr/sbin/nats-server, 2.9): one server with
// JetStream, or a cluster of three, each node with its own client, cluster and monitoring port and
// its own store dir, all on loopback. A node can be killed with SIGKILL and started again on the
// same ports and store, which is what a crashed region looks like to JetStream.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./prometheus.ts";
import { eventually, GiveUp } from "./wait.ts";

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  /** The monitoring endpoint, http://127.0.0.1:<port>. */
  monitorUrl: string;
  /** Where its JetStream keeps its files. */
  storeDir: string;
  proc: Subprocess | undefined;
  /** stdout and stderr of the current process, for failure messages. */
  log: string;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** Every node's client URL, comma-separated, as EDGECHAT_NATS_URL takes it. */
  urls: string;
  kill(node: NatsNode): Promise<void>;
  start(node: NatsNode): Promise<void>;
  /** Resolves once every running node sees the same JetStream meta leader. */
  waitForLeader(ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/** The config every node of the deployed cluster runs (deploy/nats/fly.toml). */
export const DEPLOYED_CONFIG = join(import.meta.dir, "../../deploy/nats/nats.conf");

const running = new Set<Subprocess>();
// `bun test` does not run "exit" handlers reliably, so files call stop() in afterAll too.
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** Deletes every JetStream stream (history and KV buckets), so that the next engine starts from nothing. */
export async function wipeJetStream(urls: string): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: urls.split(",") });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
  await nc.close();
}

/** One nats-server with JetStream on loopback (on `port`, or a free one) and a temp store. */
export async function startNats(port?: number): Promise<NatsCluster> {
  return startCluster(1, port);
}

/**
 * `size` nodes in one cluster ("edgechat"), JetStream on each; resolves once JetStream has a leader.
 * A port picked free can be taken before the node binds it (another test's server, or a node's own
 * outgoing route connection), so a start that loses a port is tried again on new ones.
 */
export async function startCluster(size = 3, firstPort?: number): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartCluster(size, firstPort);
    } catch (err) {
      if (attempt >= 3 || firstPort || !/address already in use/i.test(String(err))) throw err;
    }
  }
}

async function tryStartCluster(size: number, firstPort?: number): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-nats-"));
  const ports = await Promise.all(
    Array.from({ length: size }, async (_, i) => ({ client: (i === 0 && firstPort) || (await freePort()), route: await freePort(), http: await freePort() })),
  );
  // A cluster runs the deployment's own config (deploy/nats/nats.conf), filled in as fly.toml
  // does on Fly, with loopback addresses; a single server a minimal config without auth.
  // Letters first, as docs/regions.md makes it: nats-server reads "1e5..." as a number and stops.
  const password = `pw${crypto.randomUUID().replaceAll("-", "")}`;
  const env: Record<string, string>[] = [];
  const nodes: NatsNode[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    if (size > 1) {
      env.push({
        FLY_MACHINE_ID: name,
        NATS_HOST: "127.0.0.1",
        NATS_CLIENT_PORT: String(p.client),
        NATS_HTTP_PORT: String(p.http),
        NATS_CLUSTER_PORT: String(p.route),
        NATS_STORE_DIR: join(dir, name),
        NATS_PASSWORD: password,
        ...Object.fromEntries(ports.map((o, j) => [`NATS_ROUTE_${j + 1}`, `nats-route://127.0.0.1:${o.route}`])),
      });
      return {
        name,
        port: p.client,
        url: `nats://edgechat:${password}@127.0.0.1:${p.client}`,
        monitorUrl: `http://127.0.0.1:${p.http}`,
        storeDir: join(dir, name),
        proc: undefined,
        log: "",
      };
    }
    env.push({});
    const conf = [
      `server_name: ${name}`,
      `listen: "127.0.0.1:${p.client}"`,
      `http: "127.0.0.1:${p.http}"`,
      `jetstream { store_dir: "${join(dir, name)}", max_memory_store: 256MB, max_file_store: 2GB }`,
    ].join("\n");
    writeFileSync(join(dir, `${name}.conf`), conf);
    return {
      name,
      port: p.client,
      url: `nats://127.0.0.1:${p.client}`,
      monitorUrl: `http://127.0.0.1:${p.http}`,
      storeDir: join(dir, name),
      proc: undefined,
      log: "",
    };
  });
  const configOf = (node: NatsNode) => (size > 1 ? DEPLOYED_CONFIG : join(dir, `${node.name}.conf`));

  const start = async (node: NatsNode) => {
    node.log = "";
    const i = nodes.indexOf(node);
    const proc = Bun.spawn(["nats-server", "-c", configOf(node)], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", ...env[i] } });
    node.proc = proc;
    running.add(proc);
    void proc.exited.then(() => running.delete(proc));
    for (const s of [proc.stdout, proc.stderr]) {
      void (async () => {
        for await (const chunk of s as ReadableStream<Uint8Array>) node.log += new TextDecoder().decode(chunk);
      })();
    }
    // Up = serving; JetStream health is the cluster's business (waitForLeader), and after a full
    // restart /healthz stays 503 until every stream has caught up.
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new GiveUp(`${node.name} exited`);
        return (await fetch(`${node.monitorUrl}/varz`)).ok;
      },
      20_000,
      `${node.name} up`,
    ).catch(async (err) => {
      await Bun.sleep(50); // the rest of its log
      throw new Error(`${err.message}; exit code ${proc.exitCode}; log:\n${node.log}`);
    });
  };

  const kill = async (node: NatsNode) => {
    node.proc?.kill("SIGKILL");
    await node.proc?.exited;
    node.proc = undefined;
  };

  const waitForLeader = async (ms = 30_000): Promise<string> =>
    eventually<string | undefined>(
      async () => {
        const up = nodes.filter((n) => n.proc);
        // A node that died after it came up (a port it binds late, taken meanwhile) will not come
        // back by waiting: say why at once, with its log (startCluster tries again on new ports).
        const dead = up.find((n) => n.proc!.exitCode !== null);
        if (dead) throw new GiveUp(`${dead.name} exited with code ${dead.proc!.exitCode}; log:\n${dead.log}`);
        const leaders = await Promise.all(up.map(async (n) => (await (await fetch(`${n.monitorUrl}/jsz`)).json()).meta_cluster?.leader));
        // A single server has no meta cluster: JetStream is ready once /healthz says so.
        if (size === 1) return "n1";
        return leaders.every((l) => l && l === leaders[0]) ? (leaders[0] as string) : undefined;
      },
      ms,
      "a JetStream meta leader",
    ) as Promise<string>;

  try {
    await Promise.all(nodes.map(start));
    await waitForLeader();
  } catch (err) {
    await Promise.all(nodes.map(kill));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url).join(","),
    kill,
    start,
    waitForLeader,
    async stop() {
      await Promise.all(nodes.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
