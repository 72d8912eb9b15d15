// What an edit, a reaction and a delete cost next to a send (issue 15): the real server (embedded
// engine, data dir on this disk), S subscribers on gRPC Subscribe streams in the room, and C callers
// making N unary calls of one kind over gRPC (connect-node). Kinds alternate within each round
// (send, edit, react, delete, then the next round), and the figures are medians over the rounds:
// calls per second, call latency, deliveries per second to the subscribers, the server's CPU time
// per 1,000 calls (utime + stime from /proc), and the bytes of one delivered event.
//   bun bench/changes.ts [--subscribers 100] [--callers 16] [--calls 2000] [--rounds 3]
import { readFileSync } from "node:fs";
import { toBinary } from "@bufbuild/protobuf";
import { ChatEventSchema, type ChatEvent } from "../app/gen/chat/v1/chat_pb.ts";
import { chatClient, transport } from "../test/support/clients.ts";
import { startServer } from "../test/support/server.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const S = opt("subscribers", 100);
const C = opt("callers", 16);
const N = opt("calls", 2000);
const ROUNDS = opt("rounds", 3);
const KINDS = ["send", "edit", "react", "delete"] as const;
type Kind = (typeof KINDS)[number];

// No per-user or per-address limits: the bench is one user per caller, all from one address, many calls a second.
const server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0", EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS: "0", EDGECHAT_MAX_STREAMS_PER_ADDRESS: "0" });
const client = chatClient(transport(server.url, "grpc"));
const as = (user: string) => ({ headers: { "x-user": user } });
const TICKS = 100; // USER_HZ on Linux
const cpuSeconds = () => {
  const f = readFileSync(`/proc/${server.proc.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS;
};

/** Subscribers count what they get; the size of the last event of each kind is kept. */
let delivered = 0;
const eventBytes = new Map<string, number>();
const abort = new AbortController();
const room = "bench-changes";
await client.send({ target: { case: "room", value: room }, text: "start" }, as("u0"));
for (let i = 0; i < S; i++) {
  void (async () => {
    try {
      for await (const e of client.subscribe({ rooms: [room] }, { ...as(`s${i}`), signal: abort.signal }) as AsyncIterable<ChatEvent>) {
        if (e.kind.case !== "message") continue;
        delivered++;
        if (i === 0) eventBytes.set(kindOf(e), toBinary(ChatEventSchema, e).length);
      }
    } catch {}
  })();
}
function kindOf(e: ChatEvent): string {
  if (e.kind.case !== "message") return "";
  const u = e.kind.value.update;
  return u ? ["", "edit", "delete", "react", "react"][u.kind] : "send";
}
await Bun.sleep(1500);

const TEXT = "a message of a typical length, some forty characters or so";
/** Each caller's own messages: what it edits (the first) and deletes (the rest, one per call). */
async function seed(perCaller: number): Promise<bigint[][]> {
  return Promise.all(
    Array.from({ length: C }, async (_, c) => {
      const seqs: bigint[] = [];
      for (let i = 0; i < perCaller; i++) seqs.push((await client.send({ target: { case: "room", value: room }, text: TEXT }, as(`u${c}`))).message!.seq);
      return seqs;
    }),
  );
}

async function run(kind: Kind, own: bigint[][]): Promise<{ callsPerSec: number; p50: number; p99: number; deliveriesPerSec: number; cpuMsPer1000: number }> {
  const per = Math.ceil(N / C);
  const lat: number[] = [];
  const d0 = delivered;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async (_, c) => {
      const user = as(`u${c}`);
      for (let i = 0; i < per; i++) {
        const t = performance.now();
        if (kind === "send") await client.send({ target: { case: "room", value: room }, text: TEXT }, user);
        else if (kind === "edit") await client.editMessage({ room, seq: own[c][0], text: `${TEXT} (${i})` }, user);
        else if (kind === "react") await client.react({ room, seq: own[c][1], emoji: "👍", remove: i % 2 === 1 }, user);
        else await client.deleteMessage({ room, seq: own[c][2 + i] }, user);
        lat.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  // The last deliveries of the burst, before counting them.
  const want = d0 + per * C * S;
  for (let waited = 0; delivered < want && waited < 5000; waited += 20) await Bun.sleep(20);
  const deliverySeconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return {
    callsPerSec: (per * C) / seconds,
    p50: q(0.5),
    p99: q(0.99),
    deliveriesPerSec: (delivered - d0) / deliverySeconds,
    cpuMsPer1000: ((cpuSeconds() - cpu0) * 1000 * 1000) / (per * C),
  };
}

const results = new Map<Kind, Awaited<ReturnType<typeof run>>[]>();
for (let r = 0; r < ROUNDS; r++) {
  const own = await seed(2 + Math.ceil(N / C));
  for (const kind of KINDS) {
    const res = await run(kind, own);
    (results.get(kind) ?? results.set(kind, []).get(kind)!).push(res);
    console.error(`[changes] round ${r + 1} ${kind}: ${JSON.stringify(res)}`);
  }
}
abort.abort();
await server.stop();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const m = (k: Kind, f: keyof Awaited<ReturnType<typeof run>>) => median(results.get(k)!.map((x) => x[f]));
const fmt = (v: number, d = 0) => v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`${S} subscribers, ${C} callers, ${N} calls per kind per round, medians of ${ROUNDS} rounds (ratio to send)\n`);
console.log("| call | calls/s | p50 ms | p99 ms | deliveries/s | server CPU ms per 1,000 calls | bytes per event |");
console.log("|---|--:|--:|--:|--:|--:|--:|");
for (const k of KINDS) {
  const ratio = (f: keyof Awaited<ReturnType<typeof run>>) => (k === "send" ? "" : ` (${(m(k, f) / m("send", f)).toFixed(2)}×)`);
  console.log(
    `| ${k} | ${fmt(m(k, "callsPerSec"))}${ratio("callsPerSec")} | ${fmt(m(k, "p50"), 2)}${ratio("p50")} | ${fmt(m(k, "p99"), 2)}${ratio("p99")} | ${fmt(m(k, "deliveriesPerSec"))}${ratio("deliveriesPerSec")} | ${fmt(m(k, "cpuMsPer1000"))}${ratio("cpuMsPer1000")} | ${eventBytes.get(k) ?? "-"} |`,
  );
}
process.exit(0);
