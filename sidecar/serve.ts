// The sidecar's own HTTP endpoint: GET /metrics (what Prometheus scrapes) and GET /healthz.

/** The little the server needs from a logger; the app's JSON logger fits it as is. */
export interface ServeLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** Renders the exposition for an Accept header; contentType is what negotiate() picked for it. */
  render: (accept: string | null) => Promise<{ body: string; contentType: string }>;
  log: ServeLogger;
  /** /metrics requests served at once; more are answered 503 with Retry-After. Default 4. */
  maxConcurrent?: number;
}

// Bun.serve accepts only native Response objects. When app/'s Hono node adapter is loaded in the same
// process (bun test runs all files in one global), it swaps globalThis.Response for a wrapper whose
// prototype parent is the native class, so look through it.
const parent: unknown = Object.getPrototypeOf(globalThis.Response);
export const NativeResponse: typeof Response = typeof parent === "function" && parent.name === "Response" ? (parent as typeof Response) : globalThis.Response;

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new NativeResponse(JSON.stringify(body) + "\n", { status, headers: { "content-type": "application/json", ...headers } });

export async function startMetricsServer(opts: MetricsServerOptions): Promise<{ port: number; stop(): Promise<void> }> {
  const maxConcurrent = opts.maxConcurrent ?? 4;
  let rendering = 0;
  const server = Bun.serve({
    hostname: opts.host,
    port: opts.port,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path !== "/metrics" && path !== "/healthz") return json(404, { error: "not found", paths: ["/metrics", "/healthz"] });
      if (req.method !== "GET" && req.method !== "HEAD") return json(405, { error: "method not allowed" }, { allow: "GET, HEAD" });
      if (path === "/healthz") return json(200, { status: "ok" });
      // Each render holds a copy of the whole exposition: on a 256 MB machine, ten at once is
      // the difference between a slow scrape and an OOM kill.
      if (rendering >= maxConcurrent) return json(503, { error: `more than ${maxConcurrent} scrapes at once` }, { "retry-after": "1" });
      rendering++;
      try {
        const { body, contentType } = await opts.render(req.headers.get("accept"));
        return new NativeResponse(body, { headers: { "content-type": contentType } });
      } catch (err) {
        // A failed render is our bug, not the target's: say so to the scraper instead of serving half a page.
        opts.log.error("rendering /metrics failed", { err: err instanceof Error ? err.message : String(err) });
        return json(500, { error: "rendering metrics failed" });
      } finally {
        rendering--;
      }
    },
  });
  const port = server.port ?? opts.port;
  opts.log.info("metrics server listening", { host: opts.host, port });
  return {
    port,
    async stop() {
      await server.stop(true); // a scrape is cheap to retry; do not let a stuck client hold shutdown up
    },
  };
}
