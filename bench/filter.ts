// What the message filter hook costs per message: the same server (embedded engine) with and
// without EDGECHAT_FILTER_URL, a local hook that accepts everything at once (the floor of what any
// hook adds: a signed HTTP round trip per message), 16 callers making 2,000 gRPC Sends each round,
// the two servers alternating, medians of 3 rounds. The hook runs in this process.
//   bun bench/filter.ts [--callers 16] [--calls 2000] [--rounds 3]
import { readFileSync } from "node:fs";
import { chatClient, transport } from "../test/support/clients.ts";
import { startServer, type ServerProcess } from "../test/support/server.ts";
import { newSecret } from "../app/webhooks/signing.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const C = opt("callers", 16);
const N = opt("calls", 2000);
const ROUNDS = opt("rounds", 3);

const hook = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ action: "accept" }) });
const base = { EDGECHAT_RATE_PER_SECOND: "0", EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS: "0", EDGECHAT_MAX_STREAMS_PER_ADDRESS: "0" };
const servers: Record<string, ServerProcess> = {
  "no filter": await startServer(base),
  "filter hook": await startServer({ ...base, EDGECHAT_FILTER_URL: `http://127.0.0.1:${hook.port}/`, EDGECHAT_FILTER_SECRET: newSecret() }),
};
const cpu = (s: ServerProcess) => {
  const f = readFileSync(`/proc/${s.proc.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function run(s: ServerProcess) {
  const client = chatClient(transport(s.url, "grpc"));
  const per = Math.ceil(N / C);
  const lat: number[] = [];
  const cpu0 = cpu(s);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async (_, c) => {
      for (let i = 0; i < per; i++) {
        const t = performance.now();
        await client.send({ target: { case: "room", value: `r${c % 4}` }, text: "a message of a typical length" }, { headers: { "x-user": `u${c}` } });
        lat.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { callsPerSec: (per * C) / seconds, p50: q(0.5), p99: q(0.99), cpuMsPer1000: ((cpu(s) - cpu0) * 1e6) / (per * C) };
}

const results = new Map<string, Awaited<ReturnType<typeof run>>[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, s] of Object.entries(servers)) {
    const res = await run(s);
    (results.get(name) ?? results.set(name, []).get(name)!).push(res);
    console.error(`[filter] round ${r + 1} ${name}: ${JSON.stringify(res)}`);
  }
}
for (const s of Object.values(servers)) await s.stop();
hook.stop(true);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
type Field = keyof Awaited<ReturnType<typeof run>>;
const m = (name: string, f: Field) => median(results.get(name)!.map((x) => x[f]));
console.log(`${C} callers, ${N} Sends per server per round, medians of ${ROUNDS} rounds (ratio to no filter)\n`);
console.log("| server | Sends/s | p50 ms | p99 ms | server CPU ms per 1,000 Sends |");
console.log("|---|--:|--:|--:|--:|");
for (const name of Object.keys(servers)) {
  const cell = (f: Field, d: number) => `${m(name, f).toFixed(d)}${name === "no filter" ? "" : ` (${(m(name, f) / m("no filter", f)).toFixed(2)}×)`}`;
  console.log(`| ${name} | ${cell("callsPerSec", 0)} | ${cell("p50", 2)} | ${cell("p99", 2)} | ${cell("cpuMsPer1000", 0)} |`);
}
process.exit(0);
