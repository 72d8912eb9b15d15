// `edgechat sim`: the load simulator. Scripted (--clients, --duration, ... and a summary at the
// end) or interactive (a `sim>` prompt, like the old Go simulator). Every simulated client is its
// own user with its own connection and Chat stream; all of them live in this process, so a
// message's delivery latency is measured from the moment its sender sent it.
import * as readline from "node:readline";
import { parseArgs } from "node:util";
import { UNLISTED_PREFIX } from "../rules/names.ts";
import { Channel } from "./channel.ts";
import { describeError, mintToken, PROTOCOLS, type Protocol } from "./connection.ts";
import { SimClient, SimStats } from "./sim-client.ts";
import { formatSummary, startProgress, summarize, type SimSummary } from "./sim-report.ts";

const USAGE = `usage: edgechat sim [options]                     interactive: a sim> prompt
       edgechat sim --clients N --duration S [options]   scripted: run, then print a summary

  --url URL             the server (default http://localhost:8080, or EDGECHAT_URL)
  --protocol P          grpc (default), connect, grpc-web or websocket (the gateway at /ws)
  --clients N           simulated users, each with its own connection and Chat stream
  --rooms R             rooms to spread them over (default 1)
  --rate M              messages per second per client (default 1; at most --max-rate); each
                        client sends rate x duration messages
  --max-rate M          the server's per-user rate limit (default 20, the server's default)
  --duration S          seconds of sending (default 10)
  --changes F           the share of sends that are changes instead (0 to 1, default 0): edits of
                        the client's own messages, reactions toggled on anyone's, a few deletes
  --settle S            at most this long to wait for the last deliveries (default 5)
  --json                print the summary as one JSON object on stdout
  --token-secret K      mint a token per client with this HS256 secret (default EDGECHAT_JWT_SECRET)
  --prefix P            user names start with P, room names with _P (default sim-<random>)

The exit code is 1 when a message or change was lost, duplicated or out of order, a session failed
to open, a send was not acknowledged, or clients ended with a changed message in different states.`;

const HELP = `commands:
  spawn <n>                 n more simulated users, each with a Chat stream, in the rooms
  broadcast <msg> <count>   every client sends <msg> count times, 100 to 1000 ms apart
  summary                   what was sent, acknowledged and delivered so far, latencies, errors
  closeAll                  close every client's stream
  exit                      close everything and leave (also: end of input)`;

export interface SimOptions {
  url: string;
  protocol: Protocol;
  rooms: number;
  prefix: string;
  tokenSecret?: string;
  settleMs: number;
  /** The server's per-user send rate limit: no client sends faster. */
  maxRate: number;
  /** The share of sends that are changes (edits, reactions, deletes) instead: 0 to 1. */
  changes?: number;
}

/** The clients of one simulator run and their shared statistics. */
export class Simulator {
  readonly stats = new SimStats();
  readonly clients: SimClient[] = [];
  private readonly started = performance.now();
  private next = 0;

  constructor(readonly opts: SimOptions) {}

  /** Unlisted (the "_"), so that the simulator's rooms stay out of everybody else's room list. */
  roomName(k: number): string {
    return `${UNLISTED_PREFIX}${this.opts.prefix}-r${k}`;
  }

  get live(): SimClient[] {
    return this.clients.filter((c) => c.live);
  }

  /** Opens n more clients (a few at a time); resolves with the failures' descriptions. */
  async spawn(n: number): Promise<string[]> {
    const failures: string[] = [];
    const fresh: SimClient[] = [];
    for (let i = 0; i < n; i++) {
      const index = this.next++;
      const user = `${this.opts.prefix}-u${index}`;
      const headers: Record<string, string> = { "x-user": user };
      if (this.opts.tokenSecret) headers.authorization = `Bearer ${await mintToken(user, this.opts.tokenSecret, 24 * 3600)}`;
      fresh.push(
        new SimClient({ url: this.opts.url, protocol: this.opts.protocol, user, rooms: [this.roomName(index % this.opts.rooms)], headers, stats: this.stats }),
      );
    }
    for (let i = 0; i < fresh.length; i += 50) {
      await Promise.all(
        fresh.slice(i, i + 50).map(async (c) => {
          try {
            await c.open();
            this.clients.push(c);
          } catch (err) {
            failures.push(`${c.user}: ${describeError(err)}`);
          }
        }),
      );
    }
    return failures;
  }

  /**
   * Every live client sends rate x seconds messages, `rate` a second, evenly spaced. A client that
   * falls behind (a busy machine) catches up, but never faster than the server's per-user limit.
   */
  async load(rate: number, seconds: number): Promise<void> {
    const total = Math.round(rate * seconds);
    const interval = 1000 / rate;
    const gap = 1000 / this.opts.maxRate;
    await Promise.all(
      this.live.map(async (c) => {
        const start = performance.now() + Math.random() * interval;
        let last = -Infinity;
        for (let k = 0; k < total && c.live; k++) {
          const wait = Math.max(start + k * interval, last + gap) - performance.now();
          if (wait > 0) await Bun.sleep(wait);
          last = performance.now();
          if (Math.random() < (this.opts.changes ?? 0)) c.change(`${c.user} #${k + 1}`);
          else c.send(`${c.user} #${k + 1}`);
        }
      }),
    );
  }

  /** Every live client sends `text` `count` times, with a random 100 to 1000 ms between its messages. */
  async broadcast(text: string, count: number): Promise<void> {
    await Promise.all(
      this.live.map(async (c) => {
        for (let i = 0; i < count && c.live; i++) {
          if (i > 0) await Bun.sleep(Math.max(100 + Math.random() * 900, 1000 / this.opts.maxRate));
          c.send(text);
        }
      }),
    );
  }

  /** Waits for the acks of every send (up to 10 s), then for the deliveries (up to the settle time). */
  async drain(): Promise<void> {
    await Promise.race([Promise.all(this.clients.map((c) => c.acked())), Bun.sleep(10_000)]);
    const until = performance.now() + this.opts.settleMs;
    while (performance.now() < until && !this.live.every((c) => c.caughtUp())) await Bun.sleep(25);
  }

  summary(): SimSummary {
    return summarize(this.stats, this.clients, { protocol: this.opts.protocol, url: this.opts.url, elapsedMs: performance.now() - this.started });
  }

  async closeAll(): Promise<number> {
    const open = this.clients.filter((c) => c.live);
    await Promise.all(open.map((c) => c.close()));
    return open.length;
  }
}

export async function simCommand(args: string[], env = process.env): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      protocol: { type: "string", default: "grpc" },
      clients: { type: "string" },
      rooms: { type: "string", default: "1" },
      rate: { type: "string", default: "1" },
      "max-rate": { type: "string", default: "20" },
      duration: { type: "string" },
      changes: { type: "string", default: "0" },
      settle: { type: "string", default: "5" },
      json: { type: "boolean", default: false },
      "token-secret": { type: "string" },
      prefix: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`${USAGE}\n\n${HELP}`);
    return 0;
  }
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number of at least ${min} (got "${v}")`);
    return n;
  };
  const protocol = values.protocol as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new Error(`--protocol must be one of ${PROTOCOLS.join(", ")}`);
  let rate = num("rate", values.rate, 0.01);
  const maxRate = num("max-rate", values["max-rate"], 0.01);
  const opts: SimOptions = {
    url: values.url ?? env.EDGECHAT_URL ?? "http://localhost:8080",
    protocol,
    rooms: Math.floor(num("rooms", values.rooms, 1)),
    prefix: values.prefix ?? `sim-${crypto.randomUUID().slice(0, 6)}`,
    tokenSecret: values["token-secret"] ?? env.EDGECHAT_JWT_SECRET,
    settleMs: num("settle", values.settle, 0) * 1000,
    maxRate,
    changes: num("changes", values.changes, 0),
  };
  if ((opts.changes ?? 0) > 1) throw new Error(`--changes must be a share from 0 to 1 (got "${values.changes}")`);
  const sim = new Simulator(opts);
  if (values.clients === undefined && values.duration === undefined) return interactive(sim);

  if (rate > maxRate) {
    console.error(`sim: --rate ${rate} is over the server's per-user limit of ${maxRate}/s; sending ${maxRate}/s per client (--max-rate to change)`);
    rate = maxRate;
  }
  const clients = Math.floor(num("clients", values.clients ?? "10", 1));
  const duration = num("duration", values.duration ?? "10", 0);
  const log = (line: string) => (values.json ? console.error(line) : console.log(line));

  log(`sim: ${clients} clients in ${opts.rooms} room${opts.rooms === 1 ? "" : "s"}, ${rate} msg/s each for ${duration} s, ${protocol} to ${opts.url}`);
  const stopProgress = startProgress(sim.stats);
  let summary: SimSummary;
  try {
    const failures = await sim.spawn(clients);
    for (const f of failures.slice(0, 5)) console.error(`sim: could not open ${f}`);
    if (failures.length > 5) console.error(`sim: ... and ${failures.length - 5} more`);
    if (sim.live.length > 0) {
      await sim.load(rate, duration);
      await sim.drain();
    }
    summary = sim.summary();
  } finally {
    stopProgress();
    await sim.closeAll();
  }
  if (values.json) console.log(JSON.stringify(summary));
  else for (const line of formatSummary(summary)) console.log(line);
  const ok =
    summary.sessions > 0 &&
    summary.sessions_failed === 0 &&
    summary.lost === 0 &&
    summary.duplicates === 0 &&
    summary.out_of_order === 0 &&
    summary.stale === 0 &&
    summary.acknowledged + summary.raced === summary.sent;
  return ok ? 0 : 1;
}

/** The sim> prompt. On a pipe, each command is echoed after the prompt so the output reads as a session. */
async function interactive(sim: Simulator): Promise<number> {
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty, prompt: "sim> " });
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const lines = new Channel<string>();
  rl.on("line", (l) => lines.push(l));
  rl.on("close", () => lines.end());
  rl.on("SIGINT", () => rl.close());
  print(`sim: ${sim.opts.protocol} to ${sim.opts.url}, ${sim.opts.rooms} room${sim.opts.rooms === 1 ? "" : "s"}; type help for the commands`);
  if (tty) rl.prompt();
  for await (const raw of lines) {
    const line = raw.trim();
    if (!tty && line) print(`sim> ${line}`);
    const [cmd, ...rest] = line.split(/\s+/);
    if (cmd === "exit" || cmd === "quit") break;
    try {
      await runCommand(sim, cmd, rest, print);
    } catch (err) {
      print(`error: ${(err as Error).message}`);
    }
    if (tty) rl.prompt();
  }
  rl.close();
  const closed = await sim.closeAll();
  if (closed) print(`closed ${closed} session${closed === 1 ? "" : "s"}`);
  return 0;
}

async function runCommand(sim: Simulator, cmd: string, rest: string[], print: (line: string) => void): Promise<void> {
  switch (cmd) {
    case "":
      return;
    case "spawn": {
      const n = Number(rest[0]);
      if (!Number.isInteger(n) || n < 1) return print("usage: spawn <n>");
      const t0 = performance.now();
      const failures = await sim.spawn(n);
      print(`spawned ${n - failures.length} of ${n} clients in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${sim.live.length} sessions open`);
      for (const f of failures.slice(0, 5)) print(`  failed: ${f}`);
      return;
    }
    case "broadcast": {
      // The count is the last word; the message is everything before it.
      const count = rest.length > 1 && /^\d+$/.test(rest.at(-1)!) ? Number(rest.at(-1)) : 1;
      const text = (rest.length > 1 && /^\d+$/.test(rest.at(-1)!) ? rest.slice(0, -1) : rest).join(" ");
      if (!text || count < 1) return print("usage: broadcast <msg> <count>");
      const clients = sim.live.length;
      if (clients === 0) return print("no clients: spawn <n> first");
      const before = { sent: sim.stats.sent, acked: sim.stats.acknowledged, delivered: sim.stats.delivered };
      const t0 = performance.now();
      const stop = startProgress(sim.stats);
      try {
        await sim.broadcast(text, count);
        await sim.drain();
      } finally {
        stop();
      }
      const s = sim.stats;
      print(
        `broadcast: ${clients} clients sent ${s.sent - before.sent}, ${s.acknowledged - before.acked} acknowledged, ` +
          `${s.delivered - before.delivered} delivered in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      return;
    }
    case "summary":
      for (const line of formatSummary(sim.summary())) print(line);
      return;
    case "closeAll": {
      const n = await sim.closeAll();
      print(`closed ${n} session${n === 1 ? "" : "s"}`);
      return;
    }
    case "help":
      return print(HELP);
    default:
      print(`unknown command "${cmd}": type help for the commands`);
  }
}
