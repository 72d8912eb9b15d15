// Wires config -> engine -> core -> transport, and owns the shutdown order.
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { getRequestListener } from "@hono/node-server";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { authFailureReason, createAuthenticator } from "./core/auth.ts";
import { createMetrics, parseAddr, serveMetrics } from "./metrics/index.ts";
import { ChatCore } from "./core/chat.ts";
import type { Engine } from "./engine/engine.ts";
import { createEmbeddedEngine } from "./engine/embedded/index.ts";
import { file_chat_chat } from "./gen/chat/chat_pb.ts";
import { file_chat_v1_chat } from "./gen/chat/v1/chat_pb.ts";
import { file_grpc_health_v1_health } from "./gen/grpc/health/v1/health_pb.ts";
import { file_grpc_reflection_v1_reflection } from "./gen/grpc/reflection/v1/reflection_pb.ts";
import { file_grpc_reflection_v1alpha_reflection } from "./gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { createHttpApp } from "./transport/http.ts";
import { authInterceptor, drainInterceptor } from "./transport/interceptors.ts";
import { decodeErrorInterceptor, mapUnaryDecodeErrors } from "./transport/decode-errors.ts";
import { listen } from "./transport/listen.ts";
import { takeGrpcStream, type GrpcDirectOptions } from "./transport/grpc-direct.ts";
import { createGateway, WS_PROTOCOL } from "./transport/ws.ts";
import { rawContextValues } from "./transport/raw.ts";
import { registerChatV1 } from "./transport/services/chat-v1.ts";
import { registerHealth, createReadiness } from "./transport/services/health.ts";
import { registerLegacyChat } from "./transport/services/legacy-chat.ts";
import { registerReflection } from "./transport/services/reflection.ts";

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
    : createEmbeddedEngine(config.dataDir);
  core = new ChatCore({
    engine,
    region: config.region,
    limits: config.limits,
    log,
    heartbeatSeconds: config.heartbeatSeconds,
    observer: metrics.chat,
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

  const routes = (router: ConnectRouter) => {
    registerChatV1(router, core!);
    registerLegacyChat(router, core!);
    registerHealth(router, readiness, ["chat.v1.ChatService", "chat.ChatService"]);
    registerReflection(router, [
      file_chat_v1_chat,
      file_chat_chat,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
    ]);
    mapUnaryDecodeErrors(router);
    metrics.grpc.initialize([...new Set(router.handlers.map((h) => h.service))]);
  };
  // The web chat page rides along: its bundle is built in memory on the first visit (app/web/bundle.ts).
  const http = createHttpApp({ isReady: () => readiness.ready, region: config.region, web: { auth, core: core!, bus: engine.bus, heartbeatSeconds: config.heartbeatSeconds } });
  const onAuthFailure = (err: ConnectError, protocol: string) => {
    metrics.chat.authFailed(protocol, authFailureReason(err));
    log.info("auth failed", { reason: err.rawMessage, protocol });
  };
  const rpc = connectNodeAdapter({
    routes,
    fallback: getRequestListener(http.fetch) as unknown as Parameters<typeof connectNodeAdapter>[0]["fallback"],
    readMaxBytes: config.limits.maxRequestBytes,
    contextValues: rawContextValues,
    interceptors: [
      metrics.grpc.interceptor,
      drainInterceptor(() => draining),
      authInterceptor(auth, onAuthFailure),
      decodeErrorInterceptor(),
    ],
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
    // The response is complete but the client is still sending (a request refused before it was
    // read, like one over the size limit): the call is over, so end the HTTP/2 stream with
    // RST_STREAM NO_ERROR (RFC 9113 section 8.1) instead of leaving it open until the client goes.
    const stream = req.stream;
    stream?.once("finish", () => {
      if (!stream.closed && !req.readableEnded) stream.close(0);
    });
    rpc(req, res);
  };

  const direct: GrpcDirectOptions = {
    core,
    authenticate: (h) =>
      auth.authenticate(h).catch((err) => {
        if (err instanceof ConnectError) onAuthFailure(err, "grpc");
        throw err;
      }),
    isDraining: () => draining,
    metrics: (method, kind) => metrics.grpc.call("chat.v1.ChatService", method, kind),
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
    upgrade: gateway,
    // The hot path: gRPC Send and Subscribe served on the HTTP/2 stream, without Connect (grpc-direct.ts).
    takeStream: (stream, headers) => {
      if (!takeGrpcStream(stream, headers, direct)) return false;
      track(stream);
      return true;
    },
  });
  const metricsServer = config.metricsAddr === "off" ? undefined : await serveMetrics(metrics.registry, config.metricsAddr, log);
  listening = true;
  readiness.set(engineReady);
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
      await engine.close();
      metrics.stop();
      metricsServer?.stop();
      log.info("drained", { ms: Date.now() - started, unfinished: inFlight });
    },
  };
}
