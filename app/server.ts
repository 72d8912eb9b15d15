// Wires config -> engine -> core -> transport, and owns the shutdown order.
import { ConnectError } from "@connectrpc/connect";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { authFailureReason, createAuthenticator } from "./core/auth.ts";
import { createMetrics, parseAddr, serveMetrics } from "./metrics/index.ts";
import { ChatCore } from "./core/chat.ts";
import type { Engine } from "./engine/engine.ts";
import { createEmbeddedEngine } from "./engine/embedded/index.ts";
import { listen } from "./transport/listen.ts";
import { takeDirectStream, takeHttp1Stream, type GrpcDirectOptions } from "./transport/direct.ts";
import { createGateway, WS_PROTOCOL } from "./transport/ws.ts";
import { createReadiness } from "./transport/readiness.ts";
import type { RpcHandler } from "./transport/rpc.ts";
import { readFileSync } from "node:fs";
import { ApiKeys, parseApiKeys } from "./core/api-keys.ts";
import { parseEndpoints, WebhookEndpoints } from "./webhooks/endpoints.ts";
import { webhookRouter } from "./webhooks/router.ts";
import { WebhookDispatcher } from "./webhooks/dispatcher.ts";
import { filterMetrics, webhookMetrics } from "./metrics/webhooks.ts";
import { httpFilter } from "./webhooks/filter.ts";

/** When the server loads what only the requests besides gRPC Send and Subscribe need, at the latest. */
const RPC_LOAD_DELAY_MS = 100;

export interface RunningServer {
  readonly port: number;
  /** Readiness off, no new streams, GOAWAY, open streams end with Unavailable, store closed. */
  drain(deadlineMs: number): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const auth = createAuthenticator({
    jwtSecret: config.jwtSecret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  });
  // Read at start, so that a malformed line stops the server saying where, rather than refusing calls later.
  const apiKeys = new ApiKeys([
    ...parseApiKeys(config.apiKeys ?? "", "EDGECHAT_API_KEYS"),
    ...(config.apiKeysFile ? parseApiKeys(readFileSync(config.apiKeysFile, "utf8"), config.apiKeysFile) : []),
  ]);
  if (apiKeys.size > 0) log.info("server API keys loaded", { keys: apiKeys.size });
  if (auth.mode === "dev") {
    if (config.requireAuth) {
      throw new Error("EDGECHAT_REQUIRE_AUTH is set but no key is: set EDGECHAT_JWT_SECRET or EDGECHAT_JWKS_URL");
    }
    log.warn("DEV MODE: no EDGECHAT_JWT_SECRET or EDGECHAT_JWKS_URL, so anyone can claim any user with the x-user header. Never expose this server.");
  }

  // Requests in flight: what drain waits for, and the "tasks" the metrics report.
  let inFlight = 0;
  let idle: (() => void) | undefined;
  let core: ChatCore | undefined;
  const metrics = createMetrics({ rooms: () => core?.roomCount ?? 0, tasks: () => inFlight });
  // EDGECHAT_NATS_URL switches history, bus and presence to NATS, shared by every region.
  // Imported only when used: the NATS client is a measurable part of a cold start without it.
  const engine: Engine = config.nats
    ? (await import("./engine/nats/index.ts")).createNatsEngine(config, log)
    : createEmbeddedEngine(config.dataDir, { maxBytes: config.dbMaxBytes, log });
  // Webhooks: the file's endpoints are read at start (a bad file stops the server, saying what is
  // wrong); those made through the server API are the access store's, followed by every instance.
  const fromFile = config.webhooks.file ? parseEndpoints(readFileSync(config.webhooks.file, "utf8"), config.webhooks.file) : [];
  const endpoints = new WebhookEndpoints(fromFile, engine.access);
  engine.watchReady?.((up) => up && endpoints.reload());
  const ids = () => endpoints.list().map((e) => e.id);
  // Waits for an endpoint before it costs anything (with NATS: before it makes its streams).
  const dispatcher = engine.outbox
    ? new WebhookDispatcher(engine.outbox, endpoints, config.webhooks, log, webhookMetrics(metrics.registry, engine.outbox, ids))
    : undefined;
  core = new ChatCore({
    engine,
    region: config.region,
    limits: config.limits,
    log,
    heartbeatSeconds: config.heartbeatSeconds,
    observer: metrics.chat,
    auth,
    openRooms: config.openRooms,
    events: webhookRouter(endpoints),
    filter: config.filter.url ? httpFilter({ ...config.filter, url: config.filter.url }, log, filterMetrics(metrics.registry)) : undefined,
  });
  const readiness = createReadiness(false);
  let draining = false;
  // Ready = listening, not draining, and the engine can serve (a NATS engine: connected).
  let listening = false;
  let engineReady = !engine.watchReady;
  const offEngine = engine.watchReady?.((up) => {
    engineReady = up;
    readiness.set(listening && !draining && engineReady);
  });

  const onAuthFailure = (err: ConnectError, protocol: string) => {
    metrics.chat.authFailed(protocol, authFailureReason(err));
    log.info("auth failed", { reason: err.rawMessage, protocol });
  };
  // Connect and Hono (everything but the direct gRPC path) are loaded after the port is open
  // (transport/rpc.ts): by the first request that needs them, which waits, or RPC_LOAD_DELAY_MS
  // after listening, whichever comes first. Not at once: loading blocks the event loop for tens of
  // milliseconds, and the first gRPC Send or Subscribe, which does not need it, would wait too.
  let rpc: RpcHandler | undefined;
  let loadRpc!: () => void;
  const rpcLoaded = new Promise<void>((resolve) => (loadRpc = resolve))
    .then(() => import("./transport/rpc.ts"))
    .then((m) => {
      const loaded = m.createRpcHandler({
        core: core!,
        auth,
        apiKeys,
        log,
        outbox: dispatcher ? engine.outbox : undefined,
        webhookEndpoints: endpoints,
        readiness,
        metrics,
        region: config.region,
        heartbeatSeconds: config.heartbeatSeconds,
        maxRequestBytes: config.limits.maxRequestBytes,
        isDraining: () => draining,
        onAuthFailure,
      });
      listener.setStreamingRequests(loaded.streamingRequests);
      rpc = loaded;
    });

  // One listener for every call ("close" comes once), rather than a closure per call.
  const untrack = () => {
    if (--inFlight === 0) idle?.();
  };
  const track = (closable: { on(event: "close", f: () => void): unknown }) => {
    inFlight++;
    closable.on("close", untrack);
  };
  const handler = (req: any, res: any) => {
    track(res);
    // HTTP/1.1 streams (browsers) take the direct path too; HTTP/2 ones never come here.
    if (!req.stream && takeHttp1Stream(req, res, direct)) return;
    // The response is complete but the client is still sending (a request refused before it was
    // read, like one over the size limit): the call is over, so end the HTTP/2 stream with
    // RST_STREAM NO_ERROR (RFC 9113 section 8.1) instead of leaving it open until the client goes.
    const stream = req.stream;
    stream?.once("finish", () => {
      if (!stream.closed && !req.readableEnded) stream.close(0);
    });
    if (rpc) return rpc.handle(req, res);
    loadRpc();
    void rpcLoaded.then(() => rpc!.handle(req, res));
  };

  const direct: GrpcDirectOptions = {
    core,
    authenticate: (h, protocol) =>
      auth.identify(h).catch((err) => {
        if (err instanceof ConnectError) onAuthFailure(err, protocol);
        throw err;
      }),
    isDraining: () => draining,
    metrics: (service, method, kind) => metrics.grpc.call(service, method, kind),
    maxRequestBytes: config.limits.maxRequestBytes,
    onError: (err) => log.error("request failed", { err }),
  };

  // The WebSocket gateway at /ws, on the HTTP/1.1 path (cleartext or TLS).
  const gateway = createGateway({
    core,
    auth,
    maxFrameBytes: config.limits.maxRequestBytes,
    pingSeconds: config.heartbeatSeconds,
    isDraining: () => draining,
    onAuthFailure: (err, reason) => {
      metrics.chat.authFailed(WS_PROTOCOL, reason);
      log.info("auth failed", { reason: err.rawMessage, protocol: WS_PROTOCOL });
    },
    log,
  });
  const listener = await listen(handler, {
    host: config.host,
    port: config.port,
    tls: config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey } : undefined,
    onError: (err) => log.debug("connection error", { err }),
    guard: {
      maxConnections: config.connections.maxConnections,
      maxPerAddress: config.connections.maxPerAddress,
      headersTimeoutMs: config.connections.headersTimeoutSeconds * 1000,
      idleTimeoutMs: config.connections.idleTimeoutSeconds * 1000,
      pingIntervalMs: config.heartbeatSeconds * 1000,
      maxStreams: config.connections.maxStreamsPerAddress,
      onRefused: (reason, address) => {
        metrics.chat.connectionRefused(reason);
        // Timeouts are routine; the rest say someone hit a limit.
        (reason.endsWith("_timeout") ? log.debug : log.warn)("connection refused", { reason, address });
      },
    },
    upgrade: gateway,
    // The hot path: the streams (and Send) served on the HTTP/2 stream, without Connect (direct.ts).
    takeStream: (stream, headers) => {
      if (!takeDirectStream(stream, headers, direct)) return false;
      track(stream);
      return true;
    },
  });
  setTimeout(loadRpc, RPC_LOAD_DELAY_MS);
  // A module that does not load is a broken build: the server cannot serve, so it does not stay up.
  rpcLoaded.catch((err) => {
    log.error("cannot start", { err });
    process.exit(1);
  });
  // A scrape waits for the rest too: the gRPC series of every method are there from the first one.
  const metricsServer = config.metricsAddr === "off" ? undefined : await serveMetrics(metrics.registry, config.metricsAddr, log, rpcLoaded);
  listening = true;
  readiness.set(engineReady);
  // With NATS the outbox's streams are set up once the engine is ready; until then the dispatcher waits.
  endpoints.reload();
  void dispatcher?.start().catch((err) => log.error("webhooks could not start", { err }));
  log.info("listening", {
    port: listener.port,
    metrics: metricsServer ? `${parseAddr(config.metricsAddr).host}:${metricsServer.port}` : "off",
    host: config.host,
    region: config.region,
    engine: engine.name,
    auth: auth.mode,
    tls: Boolean(config.tlsCert && config.tlsKey),
  });

  return {
    port: listener.port,
    async drain(deadlineMs) {
      const started = Date.now();
      draining = true;
      readiness.set(false);
      offEngine?.();
      metrics.chat.setDraining(true);
      listener.stopAccepting();
      await core!.drain();
      await gateway.drain(Math.max(0, deadlineMs - (Date.now() - started) - 250));
      if (inFlight > 0) {
        const left = Math.max(0, deadlineMs - (Date.now() - started) - 250);
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, left).unref?.();
        });
      }
      // Trailers just written must reach the clients before their connections go.
      await listener.close(Math.min(500, Math.max(0, deadlineMs - (Date.now() - started) - 100)));
      await dispatcher?.stop();
      await engine.close();
      metrics.stop();
      metricsServer?.stop();
      log.info("drained", { ms: Date.now() - started, unfinished: inFlight });
    },
  };
}
