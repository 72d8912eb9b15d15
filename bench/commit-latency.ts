// The floor under edgechat's delivery latency: how long one durable append takes on this disk.
// Appends one message at a time (nothing else running) to the embedded store in a fresh data dir
// under each directory given (default: the system temp dir, and /dev/shm when it exists, where an
// fsync costs nothing), and prints the latency percentiles of `append` (writer thread round trip,
// SQLite commit with synchronous = FULL). Run: bun bench/commit-latency.ts [dir ...] [--n 500]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteHistory } from "../app/engine/embedded/history.ts";

const args = process.argv.slice(2);
const nAt = args.indexOf("--n");
const n = nAt >= 0 ? Number(args.splice(nAt, 2)[1]) : 500;
const dirs = args.length ? args : [tmpdir(), ...(existsSync("/dev/shm") ? ["/dev/shm"] : [])];

for (const base of dirs) {
  const dir = mkdtempSync(join(base, "edgechat-commit-"));
  const store = new SqliteHistory(join(dir, "edgechat.db"));
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await store.append({ room: "r", from: "ann", text: "hello", clientMsgId: "", region: "bench" });
    ms.push(performance.now() - t);
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  ms.sort((a, b) => a - b);
  const q = (p: number) => +ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(3);
  console.log(JSON.stringify({ dir: base, appends: n, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: q(1) }));
}
