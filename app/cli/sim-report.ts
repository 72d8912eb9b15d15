// What `edgechat sim` reports: the summary (as text or one JSON object) and the progress line.
import type { SimClient, SimStats } from "./sim-client.ts";

export interface SimSummary {
  protocol: string;
  url: string;
  elapsed_s: number;
  sessions: number;
  sessions_failed: number;
  sent: number;
  acknowledged: number;
  delivered: number;
  expected: number;
  lost: number;
  duplicates: number;
  out_of_order: number;
  /** Of the sends, the changes by kind; those that changed nothing; those refused for a delete that came first. */
  changes: { edit: number; delete: number; react: number };
  noops: number;
  raced: number;
  /** Changed messages that some client ended with in an older state than another client. */
  stale: number;
  latency_ms: { count: number; p50: number; p90: number; p99: number; max: number };
  errors: Record<string, number>;
}

/** The q-quantile (0..1) of sorted values, nearest rank; 0 for none. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

export function summarize(stats: SimStats, clients: SimClient[], info: { protocol: string; url: string; elapsedMs: number }): SimSummary {
  const sorted = Float64Array.from(stats.latencies).sort();
  const arr = Array.from(sorted);
  return {
    protocol: info.protocol,
    url: info.url,
    elapsed_s: round(info.elapsedMs / 1000),
    sessions: stats.sessions,
    sessions_failed: stats.sessionsFailed,
    sent: stats.sent,
    acknowledged: stats.acknowledged,
    delivered: stats.delivered,
    expected: clients.reduce((n, c) => n + c.expected(), 0),
    lost: clients.reduce((n, c) => n + c.lost(), 0),
    duplicates: stats.duplicates,
    out_of_order: stats.outOfOrder,
    changes: { ...stats.changes },
    noops: stats.noops,
    raced: stats.raced,
    stale: stale(clients),
    latency_ms: {
      count: arr.length,
      p50: round(quantile(arr, 0.5), 3),
      p90: round(quantile(arr, 0.9), 3),
      p99: round(quantile(arr, 0.99), 3),
      max: round(arr.at(-1) ?? 0, 3),
    },
    errors: Object.fromEntries([...stats.errors].sort()),
  };
}

/** Per changed message, the clients that hold it in an older version than the newest any client holds. */
function stale(clients: SimClient[]): number {
  const newest = new Map<string, bigint>();
  for (const c of clients) for (const [key, v] of c.versions) if (v > (newest.get(key) ?? 0n)) newest.set(key, v);
  let n = 0;
  for (const c of clients) {
    for (const [key, v] of newest) {
      const room = key.slice(0, key.indexOf("\0"));
      if (c.views.has(room) && (c.versions.get(key) ?? 0n) < v) n++;
    }
  }
  return n;
}

const ms = (v: number) => `${v.toFixed(1)} ms`;

export function formatSummary(s: SimSummary): string[] {
  const errors = Object.entries(s.errors);
  const l = s.latency_ms;
  return [
    `summary (${s.protocol}, ${s.elapsed_s.toFixed(1)} s)`,
    `  sessions       ${s.sessions}${s.sessions_failed ? ` (${s.sessions_failed} failed to open)` : ""}`,
    `  sent           ${s.sent}`,
    `  acknowledged   ${s.acknowledged}`,
    `  delivered      ${s.delivered} of ${s.expected} expected`,
    `  lost           ${s.lost}`,
    `  duplicates     ${s.duplicates}`,
    `  out of order   ${s.out_of_order}`,
    ...(s.changes.edit + s.changes.delete + s.changes.react > 0
      ? [
          `  changes        ${s.changes.edit} edits, ${s.changes.react} reactions, ${s.changes.delete} deletes; ${s.noops} changed nothing, ${s.raced} came after a delete`,
          `  stale states   ${s.stale}`,
        ]
      : []),
    l.count ? `  latency        p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}` : "  latency        -",
    `  errors         ${errors.length ? errors.map(([code, n]) => `${code} ${n}`).join(", ") : "none"}`,
  ];
}

/** One line of progress: where the run is now, and the send rate over the last interval. */
export function progressLine(stats: SimStats, elapsedMs: number, rate: number): string {
  const errs = [...stats.errors.values()].reduce((a, b) => a + b, 0);
  return (
    `[${(elapsedMs / 1000).toFixed(0).padStart(3)} s] sessions ${stats.sessions}  sent ${stats.sent} (${rate.toFixed(0)}/s)` +
    `  acked ${stats.acknowledged}  delivered ${stats.delivered}  dup ${stats.duplicates}  ooo ${stats.outOfOrder}  errors ${errs}`
  );
}

/** Prints the progress line every second: overwritten in place on a terminal, one line each otherwise. */
export function startProgress(stats: SimStats, out: NodeJS.WriteStream = process.stderr): () => void {
  const started = performance.now();
  let lastSent = stats.sent;
  let lastAt = started;
  const tty = Boolean(out.isTTY);
  const timer = setInterval(() => {
    const now = performance.now();
    const rate = ((stats.sent - lastSent) * 1000) / (now - lastAt);
    lastSent = stats.sent;
    lastAt = now;
    const line = progressLine(stats, now - started, rate);
    out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  }, 1000);
  return () => {
    clearInterval(timer);
    if (tty) out.write("\r\x1b[K");
  };
}
