// `edgechat sim` against a real server: scripted with --json over every protocol (the WebSocket
// gateway included), with per-client tokens, and interactive through its sim> prompt on stdin.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { FileSink } from "bun";
import type { SimSummary } from "../../app/cli/sim-report.ts";
import { chatClient, transport } from "../support/clients.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";
import { TEST_SECRET } from "../support/tokens.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function sim(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "app/cli/main.ts"), "sim", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...opts.env },
    stdin: opts.stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  if (opts.stdin !== undefined) {
    const sink = proc.stdin as FileSink;
    sink.write(opts.stdin);
    sink.end();
  }
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, out, err };
}

/** Every number of a clean run is present and consistent. */
function expectClean(s: SimSummary, clients: number, perClient: number) {
  expect(s.sessions).toBe(clients);
  expect(s.sessions_failed).toBe(0);
  // Each client sends rate x duration messages.
  expect(s.sent).toBe(clients * perClient);
  expect(s.acknowledged).toBe(s.sent);
  expect(s.lost).toBe(0);
  expect(s.duplicates).toBe(0);
  expect(s.out_of_order).toBe(0);
  expect(s.delivered).toBeGreaterThan(0);
  expect(s.delivered).toBe(s.expected);
  expect(s.latency_ms.count).toBe(s.delivered);
  const { p50, p90, p99, max } = s.latency_ms;
  expect(p50).toBeGreaterThan(0);
  expect(p50).toBeLessThanOrEqual(p90);
  expect(p90).toBeLessThanOrEqual(p99);
  expect(p99).toBeLessThanOrEqual(max);
  expect(max).toBeLessThan(5000);
  expect(s.errors).toEqual({});
}

describe("edgechat sim --json", () => {
  for (const protocol of ["grpc", "connect", "grpc-web", "websocket"]) {
    test(`${protocol}: 20 clients in 3 rooms, nothing lost, duplicated or out of order`, async () => {
      const run = await sim([
        "--url",
        server.url,
        "--json",
        "--clients",
        "20",
        "--rooms",
        "3",
        "--rate",
        "10",
        "--duration",
        "1.5",
        "--protocol",
        protocol,
        "--prefix",
        `sim-${protocol}`,
      ]);
      expect(run.code).toBe(0);
      const s = JSON.parse(run.out.trim()) as SimSummary; // stdout is the one JSON object
      expect(s.protocol).toBe(protocol);
      expectClean(s, 20, 15);
      // Every client sees every message of its room: 20 clients over 3 rooms are 7, 7 and 6.
      expect(s.delivered).toBeGreaterThanOrEqual(s.sent * 6);
      expect(s.delivered).toBeLessThanOrEqual(s.sent * 7);
      // The progress line, once a second on a pipe.
      expect(run.err).toMatch(/^\[ +\d+ s\] sessions 20 {2}sent \d+ \(\d+\/s\) {2}acked \d+ {2}delivered \d+/m);
      // Its rooms are unlisted: they stay out of everybody else's room list.
      const client = chatClient(transport(server.url, "connect"));
      const listed = await client.listRooms({}, { headers: { "x-user": "bystander" } });
      expect(listed.rooms.filter((r) => r.name.includes("sim-"))).toEqual([]);
      const own = await client.listRooms({}, { headers: { "x-user": `sim-${protocol}-u0` } });
      expect(own.rooms.map((r) => r.name)).toContain(`_sim-${protocol}-r0`);
    }, 30_000);
  }

  test("a mix of sends and changes (--changes 0.5) on /ws: entries checked like messages, every client ends with the same states", async () => {
    const run = await sim([
      "--url",
      server.url,
      "--json",
      "--clients",
      "8",
      "--rate",
      "20",
      "--duration",
      "1.5",
      "--changes",
      "0.5",
      "--protocol",
      "websocket",
    ]);
    const s = JSON.parse(run.out.trim()) as SimSummary;
    expect(run.code, JSON.stringify(s)).toBe(0);
    const { edit, react, delete: deleted } = s.changes;
    // 240 requests, half of them changes of all three kinds (a change with nothing to change yet is a send).
    expect(edit).toBeGreaterThan(10);
    expect(react).toBeGreaterThan(10);
    expect(deleted).toBeGreaterThan(0);
    expect(s.sent).toBe(8 * 30);
    expect(s.acknowledged + s.raced).toBe(s.sent);
    expect([s.lost, s.duplicates, s.out_of_order, s.stale]).toEqual([0, 0, 0, 0]);
    // Every acknowledged message and every entry reaches all 8 clients of the room.
    expect(s.delivered).toBe(s.expected);
    expect(s.delivered).toBe((s.acknowledged - s.noops) * 8);
    expect(s.errors).toEqual({});
  }, 30_000);

  test("the rate stays under the server's per-user limit, and tokens are minted per client", async () => {
    const jwt = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET });
    try {
      const run = await sim(["--url", jwt.url, "--json", "--clients", "4", "--rate", "50", "--duration", "2"], { env: { EDGECHAT_JWT_SECRET: TEST_SECRET } });
      expect(run.err).toContain("--rate 50 is over the server's per-user limit of 20/s; sending 20/s per client");
      expect(run.code).toBe(0);
      const s = JSON.parse(run.out.trim()) as SimSummary;
      expectClean(s, 4, 40);
      expect(s.delivered).toBe(s.sent * 4);
    } finally {
      await jwt.stop();
    }
  }, 30_000);
});

describe("edgechat sim, interactive", () => {
  test("spawn, broadcast, summary, exit through the sim> prompt", async () => {
    const run = await sim(["--url", server.url], { stdin: "spawn 5\nbroadcast hi 2\nsummary\nexit\n" });
    expect(run.code).toBe(0);
    const out = run.out;
    expect(out).toContain("sim> spawn 5\nspawned 5 of 5 clients");
    expect(out).toMatch(/; 5 sessions open\n/);
    // Five clients, two messages each, all five in the one room: 10 sent, 50 deliveries.
    expect(out).toMatch(/sim> broadcast hi 2\nbroadcast: 5 clients sent 10, 10 acknowledged, 50 delivered in [\d.]+ s\n/);
    expect(out).toContain("sim> summary\nsummary (grpc, ");
    expect(out).toMatch(/\n {2}sessions {7}5\n/);
    expect(out).toMatch(
      /\n {2}sent {11}10\n {2}acknowledged {3}10\n {2}delivered {6}50 of 50 expected\n {2}lost {11}0\n {2}duplicates {5}0\n {2}out of order {3}0\n/,
    );
    const lat = /latency {8}p50 ([\d.]+) ms {2}p90 ([\d.]+) ms {2}p99 ([\d.]+) ms {2}max ([\d.]+) ms/.exec(out);
    expect(lat).not.toBeNull();
    const [p50, p90, p99, max] = lat!.slice(1).map(Number);
    expect(p50).toBeGreaterThan(0);
    expect(p50 <= p90 && p90 <= p99 && p99 <= max).toBe(true);
    expect(out).toContain("  errors         none\n");
    expect(out).toContain("sim> exit\nclosed 5 sessions\n");
  }, 30_000);

  test("closeAll, more clients after it, and unknown commands", async () => {
    const run = await sim(["--url", server.url, "--rooms", "2", "--protocol", "connect"], {
      stdin: "spawn 3\nbroadcast hello there 1\ncloseAll\nspawn 2\nbroadcast again 1\nsummary\nfly\n",
    });
    expect(run.code).toBe(0);
    // Clients 0 and 2 in one room, 1 in the other: 3 messages, 2 + 2 + 1 deliveries.
    expect(run.out).toMatch(/broadcast: 3 clients sent 3, 3 acknowledged, 5 delivered/);
    expect(run.out).toContain("sim> closeAll\nclosed 3 sessions\n");
    // The new clients 3 (room 1) and 4 (room 0), alone in their rooms: one delivery each.
    expect(run.out).toMatch(/broadcast: 2 clients sent 2, 2 acknowledged, 2 delivered/);
    expect(run.out).toMatch(/ {2}sessions {7}5\n {2}sent {11}5\n {2}acknowledged {3}5\n {2}delivered {6}7 of 7 expected\n {2}lost {11}0\n/);
    expect(run.out).toContain('unknown command "fly": type help for the commands');
    // End of input closes what is open.
    expect(run.out).toMatch(/closed 2 sessions\n$/);
  }, 30_000);
});
