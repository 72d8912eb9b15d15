// The server's own metrics endpoint: prom-client, on a private address (never the public port).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "./prom.ts";
import type { Logger } from "../log.ts";
import { chatMetrics, type ChatGauges, type ChatMetrics } from "./chat.ts";
import { gcMetrics } from "./gc.ts";
import { grpcServerMetrics, type GrpcServerMetrics } from "./grpc.ts";
import { runtimeMetrics } from "./runtime.ts";

export interface Metrics {
  registry: Registry;
  chat: ChatMetrics;
  grpc: GrpcServerMetrics;
  stop(): void;
}

export function createMetrics(gauges: ChatGauges): Metrics {
  const registry = new Registry();
  const gc = gcMetrics(registry);
  const runtime = runtimeMetrics(registry);
  return {
    registry,
    chat: chatMetrics(registry, gauges),
    grpc: grpcServerMetrics(registry),
    stop() {
      gc.stop();
      runtime.stop();
    },
  };
}

/**
 * Serves GET /metrics on host:port ("127.0.0.1:2112"); a scrape first waits for `before`, if given. node:http rather than Bun.serve: the Hono
 * adapter swaps the global Response for its own, which Bun.serve refuses.
 */
export async function serveMetrics(registry: Registry, addr: string, log: Logger, before?: Promise<unknown>): Promise<{ port: number; stop(): void }> {
  const { host, port } = parseAddr(addr);
  const server = http.createServer(async (req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try GET /metrics\n");
      return;
    }
    try {
      await before;
      const body = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType }).end(body);
    } catch (err) {
      log.error("metrics endpoint failed", { err });
      res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return { port: (server.address() as AddressInfo).port, stop: () => void server.close() };
}

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`expected host:port, got "${addr}"`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
}
