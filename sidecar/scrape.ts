// One scrape of the target's /metrics: bounded in time and in size, and never throws, so the loop
// that calls it only has to look at the result.
import { parseText, type MetricFamily } from "./exposition.ts";

export type ScrapeErrorReason = "timeout" | "too_large" | "too_many_series" | "http_status" | "connection";

export interface ScrapeResult {
  ok: boolean;
  families: MetricFamily[];
  error?: string;
  /** Why the scrape failed, as a closed set fit for a metric label (error is the human detail). */
  reason?: ScrapeErrorReason;
  durationSeconds: number;
  badLines: number;
  bytes: number;
}

// We parse 0.0.4 only, so ask for it (prom-client ignores Accept, but an OpenMetrics-capable target
// would otherwise be free to pick a format we read less precisely).
const ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

class ScrapeFailure extends Error {
  constructor(
    readonly reason: ScrapeErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export interface ScrapeOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Samples one scrape may have; past it the scrape fails (too_many_series). Default: no limit. */
  maxSeries?: number;
  /** Labels one sample may have; a sample with more is skipped as a bad line. Default: no limit. */
  maxLabels?: number;
}

export async function scrape(url: string, opts: ScrapeOptions): Promise<ScrapeResult> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const controller = new AbortController();
  const timeout = new ScrapeFailure("timeout", `no complete response within ${opts.timeoutMs} ms`);
  // One timer for the whole exchange, headers and body: a target that accepts and then says nothing,
  // or trickles a byte at a time, is cut off at the same deadline.
  const timer = setTimeout(() => controller.abort(timeout), opts.timeoutMs);
  let bytes = 0;
  try {
    const res = await fetch(url, { signal: controller.signal, headers: { accept: ACCEPT } });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new ScrapeFailure("http_status", `target answered HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get("content-length"));
    if (!res.headers.get("content-encoding") && declared > opts.maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge(opts.maxBytes, `Content-Length ${declared}`);
    }
    // Bytes are kept and decoded once at the end: a body that turns out too large then leaves no
    // strings behind, only the chunks, which go with the reader.
    const chunks: Uint8Array[] = [];
    const reader = res.body?.getReader();
    const aborted = abortPromise(controller.signal);
    aborted.catch(() => {}); // it rejects on every exit (see finally); only the race cares
    for (;;) {
      if (!reader) break;
      // Race each read against the deadline so a stalled body cannot outlive it, whatever the runtime
      // does with the signal once the headers are in.
      const chunk = await Promise.race([reader.read(), aborted]);
      if (chunk.done) break;
      // Counted after decompression: that is the size that costs memory here.
      bytes += chunk.value.byteLength;
      if (bytes > opts.maxBytes) {
        await reader.cancel().catch(() => {});
        controller.abort();
        throw tooLarge(opts.maxBytes, `more than ${opts.maxBytes} bytes received`);
      }
      chunks.push(chunk.value);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let badLines = 0;
    let tooMany = false;
    const families = parseText(text, () => badLines++, { maxSamples: opts.maxSeries, maxLabels: opts.maxLabels, onLimit: () => (tooMany = true) });
    // A partial scrape would look like series that vanished: all or nothing, as for size.
    if (tooMany) throw new ScrapeFailure("too_many_series", `more than ${opts.maxSeries} series`);
    return { ok: true, families, durationSeconds: elapsed(), badLines, bytes };
  } catch (err) {
    const failure =
      err instanceof ScrapeFailure
        ? err
        : controller.signal.reason === timeout
          ? timeout
          : new ScrapeFailure("connection", `cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`);
    return { ok: false, families: [], error: `${failure.reason}: ${failure.message}`, reason: failure.reason, durationSeconds: elapsed(), badLines: 0, bytes };
  } finally {
    clearTimeout(timer);
    controller.abort(); // frees the connection whichever way we left
    // Past the limit, the runtime has read ahead of us (fetch does not wait for the reader), and
    // megabytes of garbage would otherwise pile up until the collector gets to them: a sidecar on a
    // 256 MB machine collects them now. Only on this failure path, so healthy scrapes pay nothing.
    if (bytes > opts.maxBytes) Bun.gc(true);
  }
}

function tooLarge(maxBytes: number, detail: string): ScrapeFailure {
  return new ScrapeFailure("too_large", `response exceeds the ${maxBytes}-byte limit (${detail})`);
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(signal.reason);
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
}
