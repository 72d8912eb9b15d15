// The sidecar process never goes down because the server misbehaves: it answers, says so, and its
// memory stays bounded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { NativeResponse } from "../../sidecar/serve.ts";
import { startSidecar, stopAll, type SidecarProcess } from "../support/prometheus.ts";

let bad: ReturnType<typeof Bun.serve>;
const CHUNK = new Uint8Array(1 << 20).fill(0x61); // 1 MiB of "a"

beforeAll(() => {
  bad = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/garbage") return new NativeResponse("this is not\n{ the exposition format\nedgechat_tasks 2\n");
      if (path === "/slow") return new Promise<Response>(() => {}); // never answers
      if (path === "/huge") {
        let sent = 0;
        const body = new ReadableStream({
          pull(c) {
            if (sent++ >= 50) return c.close();
            c.enqueue(CHUNK);
          },
        });
        return new NativeResponse(body);
      }
      return new NativeResponse("boom", { status: 500 });
    },
  });
});
afterAll(async () => {
  await stopAll();
  bad.stop(true);
});

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
const value = (text: string, name: string) => {
  const line = text.split("\n").find((l) => l.startsWith(name + "{") || l.startsWith(name + " "));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : undefined;
};

async function sidecarFor(path: string): Promise<SidecarProcess> {
  return startSidecar({
    EDGECHAT_SIDECAR_TARGET: `http://127.0.0.1:${bad.port}${path}`,
    EDGECHAT_SIDECAR_TIMEOUT_MS: "500",
    EDGECHAT_SIDECAR_MAX_BYTES: String(4 << 20),
  });
}

test("garbage: bad lines skipped and counted, the good ones served", async () => {
  const s = await sidecarFor("/garbage");
  const text = await (await fetch(s.url)).text();
  expect(value(text, "edgechat_sidecar_target_up")).toBe(1);
  expect(value(text, "edgechat_sidecar_bad_lines_total")).toBe(2);
  expect(value(text, "go_goroutines")).toBe(2);
});

test("slow, erroring and 50 MB targets: the sidecar answers in time with target_up 0, memory bounded", async () => {
  for (const [path, reason] of [
    ["/slow", "timeout"],
    ["/huge", "too_large"],
    ["/error", "http_status"],
  ] as const) {
    const s = await sidecarFor(path);
    const rss: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      const text = await (await fetch(s.url)).text();
      expect(Date.now() - started).toBeLessThan(3000);
      expect(value(text, "edgechat_sidecar_target_up")).toBe(0);
      expect(text).toMatch(new RegExp(`edgechat_sidecar_scrape_errors_total\\{[^}]*reason="${reason}"[^}]*\\} ${i + 1}\n`));
      expect(text).not.toContain("go_goroutines");
      rss.push(rssKiB(s.proc.pid));
    }
    // Bounded: whatever the first scrapes cost (buffers the collector has yet to reclaim), the
    // later ones add nothing that stays, and nothing near the 50 MB the target offers.
    console.log(`${path}: sidecar RSS after scrapes 1, 5, 10: ${rss[0]}, ${rss[4]}, ${rss[9]} KiB`);
    expect(rss[9] - rss[4]).toBeLessThan(12 * 1024);
    expect(Math.max(...rss) - rss[0]).toBeLessThan(48 * 1024);
    await s.stop();
  }
}, 30_000);
