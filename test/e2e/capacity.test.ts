// What fly.toml promises, held: the production entrypoint in a memory cgroup of fly.toml's VM size
// with fly.toml's [env] (bench/contained.ts); hard_limit connections, one stream each, every kind of
// stream in turn (gRPC Subscribe, Chat over gRPC, Connect Subscribe, gRPC-Web Subscribe, /ws), 100
// to a room; then one message to every room. No process is OOM-killed, the server stays ready, and
// every stream gets its message. Needs root and the cgroup v1 memory controller; skipped loudly
// without them.
import { afterAll, expect, test } from "bun:test";
import { containmentUnavailable, flyCapacity, LoadGen, startContained, STREAM_KINDS, type Contained } from "../../bench/contained.ts";

const fly = flyCapacity();
const why = containmentUnavailable();
if (why) {
  const bar = "!".repeat(100);
  console.warn(`\n${bar}\n!! SKIPPING test/e2e/capacity.test.ts: ${why}. fly.toml's capacity is NOT checked.\n${bar}\n`);
}

let server: Contained | undefined;
let loadgen: LoadGen | undefined;
afterAll(async () => {
  await loadgen?.close();
  await server?.stop();
});

test.skipIf(why !== "")(
  `fly.toml's ${fly.hardLimit} connections, every kind of stream, in ${fly.vmMemory}: no OOM, still ready, every stream gets its message`,
  async () => {
    server = await startContained(fly.memoryBytes);
    loadgen = new LoadGen();
    const result = await loadgen.call("capacity", { port: server.port, n: fly.hardLimit, perRoom: 100, kinds: STREAM_KINDS }, 240_000);
    const mib = (b: number) => (b / 1048576).toFixed(1);
    console.log(
      `capacity: ${JSON.stringify(result)}; peak ${mib(server.peak())} MiB of ${mib(fly.memoryBytes)} MiB, failcnt ${server.failcnt()}, oom kills ${server.oomKills()}`,
    );
    expect({ oomKills: server.oomKills(), running: server.running() }).toEqual({ oomKills: 0, running: true });
    expect(result).toMatchObject({ opened: fly.hardLimit, delivered: fly.hardLimit, expected: fly.hardLimit, ended: 0 });
    expect(await server.ready()).toBe(true);
    expect(server.log()).not.toContain("server exited");
  },
  300_000,
);
