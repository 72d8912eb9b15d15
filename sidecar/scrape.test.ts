// The sidecar's plumbing against real local servers on 127.0.0.1: scrape() against one target per way
// a target can misbehave, SelfMetrics fed by those results, and startMetricsServer serving them.
import { afterAll, describe, expect, test } from "bun:test";
import { formatOpenMetrics, formatText, negotiate, parseText, type MetricFamily } from "./exposition.ts";
import { scrape, type ScrapeResult } from "./scrape.ts";
import { SelfMetrics } from "./self-metrics.ts";
import { NativeResponse, startMetricsServer } from "./serve.ts";

type Handler = (req: Request) => Response | Promise<Response>;
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

function target(handler: Handler): string {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 30, fetch: handler });
  cleanups.push(() => server.stop(true));
  return `http://127.0.0.1:${server.port}/metrics`;
}

const families: MetricFamily[] = [
  {
    name: "chat_messages_sent_total",
    type: "counter",
    help: "Messages sent.",
    samples: [{ name: "chat_messages_sent_total", labels: { room: "lobby" }, value: 42 }],
  },
  { name: "chat_rooms", type: "gauge", help: "Open rooms.", samples: [{ name: "chat_rooms", labels: {}, value: 3 }] },
];
const OPTS = { timeoutMs: 2000, maxBytes: 1 << 20 };

describe("scrape", () => {
  test("healthy target: families, byte count, no bad lines", async () => {
    let accept: string | null = null;
    const url = target((req) => {
      accept = req.headers.get("accept");
      return new NativeResponse(formatText(families), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    });
    const r = await scrape(url, OPTS);
    expect(r).toMatchObject({ ok: true, badLines: 0, bytes: formatText(families).length });
    expect(r.error).toBeUndefined();
    expect(r.families).toEqual(families);
    expect(r.durationSeconds).toBeGreaterThan(0);
    expect(accept!).toStartWith("text/plain;version=0.0.4");
  });

  test("target down (closed port): connection error", async () => {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new NativeResponse("") });
    const port = server.port;
    await server.stop(true);
    const r = await scrape(`http://127.0.0.1:${port}/metrics`, OPTS);
    expect(r).toMatchObject({ ok: false, reason: "connection", families: [] });
    expect(r.error).toContain("connection");
  });

  test("target accepts the connection and never answers: timeout within timeoutMs + slack", async () => {
    // A raw TCP listener: the connection is accepted, the request is read, nothing is ever written.
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    cleanups.push(() => listener.stop(true));
    const t0 = performance.now();
    const r = await scrape(`http://127.0.0.1:${listener.port}/metrics`, { ...OPTS, timeoutMs: 300 });
    const ms = performance.now() - t0;
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(300 + 500);
    expect(r.durationSeconds).toBeLessThan(0.8);
  });

  test("handler that never resolves: timeout", async () => {
    const url = target(() => new Promise<Response>(() => {}));
    const t0 = performance.now();
    const r = await scrape(url, { ...OPTS, timeoutMs: 300 });
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(performance.now() - t0).toBeLessThan(800);
  });

  test("target trickles the body a few bytes at a time: timeout, not a hang", async () => {
    const url = target(() => {
      let timer: ReturnType<typeof setInterval>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          timer = setInterval(() => {
            try {
              c.enqueue(new TextEncoder().encode("# still here\n"));
            } catch {
              clearInterval(timer);
            }
          }, 50);
        },
        cancel() {
          clearInterval(timer);
        },
      });
      return new NativeResponse(body, { headers: { "content-type": "text/plain" } });
    });
    const t0 = performance.now();
    const r = await scrape(url, { ...OPTS, timeoutMs: 400 });
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(r.bytes).toBeGreaterThan(0); // the body had started: this is the mid-body deadline
    expect(performance.now() - t0).toBeLessThan(900);
  });

  test("garbage body: ok, with the bad lines counted and the good ones kept", async () => {
    const body = 'this is not\n<html>nope</html>\nchat_rooms 3\nchat_rooms{a="b 1\nchat_users NaNish\n';
    const url = target(() => new NativeResponse(body));
    const r = await scrape(url, OPTS);
    expect(r).toMatchObject({ ok: true, badLines: 4 });
    expect(r.families.map((f) => f.name)).toEqual(["chat_rooms"]);
  });

  test("non-200: http_status error, body not parsed", async () => {
    const url = target(() => new NativeResponse("chat_rooms 3\n", { status: 503 }));
    const r = await scrape(url, OPTS);
    expect(r).toMatchObject({ ok: false, reason: "http_status", families: [] });
    expect(r.error).toContain("503");
  });

  test("hundreds of thousands of tiny series within the byte limit: too_many_series, parsing stops at the limit", async () => {
    // 540,000 series in about 7 MB once took the sidecar to 817 MB for one scrape.
    const body = Array.from({ length: 540_000 }, (_, i) => `s${i} 1`).join("\n") + "\n";
    const url = target(() => new NativeResponse(body));
    const r = await scrape(url, { timeoutMs: 5000, maxBytes: 16 << 20, maxSeries: 20_000 });
    expect(r).toMatchObject({ ok: false, reason: "too_many_series", families: [] });
    expect(r.error).toContain("more than 20000 series");
    let seen = 0;
    const kept = parseText(body, undefined, { maxSamples: 100, onLimit: () => seen++ });
    expect(kept).toHaveLength(100);
    expect(seen).toBe(1);
  });

  test("a sample with more labels than the limit is a bad line; the rest is kept", async () => {
    const wide = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`l${i}`, "v"]));
    const labels = Object.entries(wide)
      .map(([k, v]) => `${k}="${v}"`)
      .join(",");
    const url = target(() => new NativeResponse(`wide{${labels}} 1\nchat_rooms 3\n`));
    const r = await scrape(url, { ...OPTS, maxLabels: 30 });
    expect(r).toMatchObject({ ok: true, badLines: 1 });
    expect(r.families.map((f) => f.name)).toEqual(["chat_rooms"]);
    const why: string[] = [];
    parseText(`wide{${labels}} 1\n`, (_, reason) => why.push(reason), { maxLabels: 30 });
    expect(why).toEqual(["more than 30 labels"]);
  });

  test("declared Content-Length over the limit fails before reading", async () => {
    const url = target(() => new NativeResponse("x".repeat(2 << 20)));
    const r = await scrape(url, OPTS);
    expect(r).toMatchObject({ ok: false, reason: "too_large" });
    expect(r.bytes).toBe(0);
  });

  test("a 50 MB streamed body fails with too_large quickly, without buffering it", async () => {
    const total = 50 << 20;
    const chunk = new TextEncoder().encode(`chat_rooms{pad="${"x".repeat(64 * 1024 - 32)}"} 1\n`.slice(0, 64 * 1024));
    let sent = 0;
    const url = target(
      () =>
        new NativeResponse(
          // Pulled on demand, so the target itself holds one chunk at a time.
          new ReadableStream<Uint8Array>({
            pull(c) {
              if (sent >= total) return c.close();
              c.enqueue(chunk);
              sent += chunk.byteLength;
            },
          }),
          { headers: { "content-type": "text/plain" } },
        ),
    );
    // Warm up the client and the allocator so the comparison measures this scrape only.
    await scrape(
      target(() => new NativeResponse("chat_rooms 1\n")),
      OPTS,
    );
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
    const t0 = performance.now();
    const r = await scrape(url, { timeoutMs: 10_000, maxBytes: 1 << 20 });
    const ms = performance.now() - t0;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const grownMb = (peak - before) / (1 << 20);
    console.log(`50 MB target: failed after ${ms.toFixed(0)} ms, ${r.bytes} bytes read, target sent ${sent >> 20} MiB, peak RSS +${grownMb.toFixed(1)} MiB`);
    expect(r).toMatchObject({ ok: false, reason: "too_large" });
    expect(r.error).toContain("too_large");
    expect(r.bytes).toBeGreaterThan(1 << 20);
    // Stopped at the first chunk past the limit (a chunk is whatever the runtime had buffered).
    expect(r.bytes).toBeLessThan(12 << 20);
    expect(ms).toBeLessThan(2000);
    expect(grownMb).toBeLessThan(20);
  });
});

describe("SelfMetrics", () => {
  const value = (fams: MetricFamily[], name: string, labels: Record<string, string> = {}) =>
    fams.find((f) => f.name === name)?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

  test("before any scrape: down, zero counters for every reason, no duration", () => {
    const fams = new SelfMetrics(() => 0).families();
    expect(fams.map((f) => [f.name, f.type])).toEqual([
      ["edgechat_sidecar_target_up", "gauge"],
      ["edgechat_sidecar_scrape_duration_seconds", "gauge"],
      ["edgechat_sidecar_scrapes_total", "counter"],
      ["edgechat_sidecar_scrape_errors_total", "counter"],
      ["edgechat_sidecar_bad_lines_total", "counter"],
      ["edgechat_sidecar_last_success_timestamp_seconds", "gauge"],
    ]);
    expect(value(fams, "edgechat_sidecar_target_up")).toBe(0);
    expect(fams[1].samples).toEqual([]);
    expect(fams[3].samples.map((s) => [s.labels.reason, s.value])).toEqual([
      ["timeout", 0],
      ["too_large", 0],
      ["too_many_series", 0],
      ["http_status", 0],
      ["connection", 0],
    ]);
  });

  test("records real scrape results", async () => {
    const self = new SelfMetrics(() => 1_700_000_000_500);
    const good = target(() => new NativeResponse("chat_rooms 3\nnot a line\n"));
    self.record(await scrape(good, OPTS));
    let fams = self.families();
    expect(value(fams, "edgechat_sidecar_target_up")).toBe(1);
    expect(value(fams, "edgechat_sidecar_scrape_duration_seconds")).toBeGreaterThan(0);
    expect(value(fams, "edgechat_sidecar_bad_lines_total")).toBe(1);
    expect(value(fams, "edgechat_sidecar_last_success_timestamp_seconds")).toBe(1_700_000_000.5);

    self.record(
      await scrape(
        target(() => new NativeResponse("", { status: 500 })),
        OPTS,
      ),
    );
    self.record({ ok: false, families: [], error: "made up", durationSeconds: 0.1, badLines: 0, bytes: 0 } satisfies ScrapeResult);
    fams = self.families();
    expect(value(fams, "edgechat_sidecar_target_up")).toBe(0);
    expect(value(fams, "edgechat_sidecar_scrapes_total")).toBe(3);
    expect(value(fams, "edgechat_sidecar_scrape_errors_total", { reason: "http_status" })).toBe(1);
    expect(value(fams, "edgechat_sidecar_scrape_errors_total", { reason: "other" })).toBe(1);
    expect(value(fams, "edgechat_sidecar_last_success_timestamp_seconds")).toBe(1_700_000_000.5);
    // Served as is, they read back unchanged, and promtool (when present) finds nothing to say.
    expect(parseText(formatText(fams))).toEqual(fams);
    const promtool = Bun.which("promtool");
    if (promtool) {
      const run = Bun.spawnSync([promtool, "check", "metrics"], { stdin: Buffer.from(formatText(fams)) });
      expect(run.stdout.toString() + run.stderr.toString()).toBe("");
    }
  });
});

describe("startMetricsServer", () => {
  const logged: string[] = [];
  const log = { info: (m: string) => logged.push(`info ${m}`), error: (m: string) => logged.push(`error ${m}`) };

  test("serves /metrics in the negotiated format, /healthz, and JSON 404/405", async () => {
    let fail = false;
    const server = await startMetricsServer({
      host: "127.0.0.1",
      port: 0,
      log,
      async render(accept) {
        if (fail) throw new Error("boom");
        const { format, contentType } = negotiate(accept);
        return { body: format === "openmetrics" ? formatOpenMetrics(families) : formatText(families), contentType };
      },
    });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect(server.port).toBeGreaterThan(0);
      let res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(await res.text()).toBe(formatText(families));

      res = await fetch(`${base}/metrics`, { headers: { accept: "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5" } });
      expect(res.headers.get("content-type")).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
      expect(await res.text()).toEndWith("# EOF\n");

      res = await fetch(`${base}/healthz`);
      expect([res.status, await res.json()]).toEqual([200, { status: "ok" }]);

      res = await fetch(`${base}/nope`);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.json()).toMatchObject({ error: "not found" });

      res = await fetch(`${base}/metrics`, { method: "POST" });
      expect([res.status, res.headers.get("allow")]).toEqual([405, "GET, HEAD"]);

      fail = true;
      res = await fetch(`${base}/metrics`);
      expect([res.status, await res.json()]).toEqual([500, { error: "rendering metrics failed" }]);
      expect(logged).toContain("error rendering /metrics failed");
    } finally {
      await server.stop();
    }
    expect(
      await fetch(`${base}/healthz`).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
  });
});

describe("startMetricsServer under many scrapers", () => {
  test("past maxConcurrent renders, a scrape gets 503 with Retry-After; the others are served", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await startMetricsServer({
      host: "127.0.0.1",
      port: 0,
      log: { info() {}, error() {} },
      maxConcurrent: 2,
      async render() {
        await gate;
        return { body: "x 1\n", contentType: "text/plain" };
      },
    });
    cleanups.push(() => void server.stop());
    const url = `http://127.0.0.1:${server.port}/metrics`;
    const first = [fetch(url), fetch(url)];
    await Bun.sleep(100);
    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    release();
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    expect((await fetch(url)).status).toBe(200);
  });
});
