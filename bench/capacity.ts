// What one connection with one stream costs the machine, for each kind of stream a client can open,
// measured the way fly.toml's limits need it: the production entrypoint (supervisor, server and
// sidecar) in a memory cgroup (bench/contained.ts), so that the figure is what the kernel charges
// the machine, page cache included, not one process's RSS. Prints the table and the arithmetic of
// fly.toml's soft_limit and hard_limit (docs/deploy.md shows them). Needs root and cgroup v1.
//   bun bench/capacity.ts [--streams 3000]
import { containmentUnavailable, flyCapacity, LoadGen, startContained, STREAM_KINDS } from "./contained.ts";

const argv = process.argv.slice(2);
const n = Number(argv[argv.indexOf("--streams") + 1]) || 3000;
const why = containmentUnavailable();
if (why) {
  console.error(`bench/capacity.ts: cannot run here: ${why}`);
  process.exit(2);
}
const fly = flyCapacity();
const MiB = 1048576;
const rows: { kind: string; restMiB: number; withMiB: number; perStreamKiB: number }[] = [];

for (const kind of [...STREAM_KINDS, "mix"]) {
  // A limit far above what is measured: the point is the cost, not the ceiling.
  const server = await startContained(4 * 1024 * MiB);
  const loadgen = new LoadGen();
  try {
    await Bun.sleep(2000);
    const rest = server.usage();
    const result = await loadgen.call("capacity", { port: server.port, n, perRoom: 100, kinds: kind === "mix" ? STREAM_KINDS : [kind], keep: true }, 300_000);
    if (result.delivered !== n || result.ended !== 0) throw new Error(`${kind}: ${JSON.stringify(result)}`);
    await Bun.sleep(2000);
    const withStreams = server.usage();
    await loadgen.call("release", {}, 10_000);
    rows.push({
      kind,
      restMiB: +(rest / MiB).toFixed(1),
      withMiB: +(withStreams / MiB).toFixed(1),
      perStreamKiB: +((withStreams - rest) / n / 1024).toFixed(1),
    });
    console.error(`[capacity] ${kind}: ${JSON.stringify(rows.at(-1))}`);
  } finally {
    await loadgen.close();
    await server.stop();
  }
}

const rest = Math.max(...rows.map((r) => r.restMiB));
const worst = rows.filter((r) => r.kind !== "mix").reduce((a, b) => (b.perStreamKiB > a.perStreamKiB ? b : a));
const memoryMiB = fly.memoryBytes / MiB;
// A fifth of the machine stays free: garbage not yet collected, bursts of writes, the kernel's socket buffers.
const headroomMiB = memoryMiB / 5;
const hard = Math.floor(((memoryMiB - rest - headroomMiB) * 1024) / worst.perStreamKiB / 500) * 500;
console.log(`| stream kind | cgroup at rest (MiB) | with ${n} streams (MiB) | per connection and stream (KiB) |`);
console.log("|---|--:|--:|--:|");
for (const r of rows) console.log(`| ${r.kind} | ${r.restMiB} | ${r.withMiB} | ${r.perStreamKiB} |`);
console.log(
  `\nhard_limit = (${memoryMiB} MiB - ${rest} MiB at rest - ${headroomMiB} MiB headroom) / ${worst.perStreamKiB} KiB (${worst.kind}, the most expensive) = ${hard} (rounded down to 500); soft_limit = 3/4 of it = ${Math.floor((hard * 3) / 4 / 500) * 500}. fly.toml has ${fly.softLimit} and ${fly.hardLimit}.`,
);
process.exit(0);
