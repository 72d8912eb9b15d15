// Every request on the public port that the direct path (direct.ts) does not take: the
// RPCs through Connect (connect-node's adapter: Connect, gRPC, gRPC-Web; chat.v1 and the legacy
// chat.ChatService, health, reflection), and Hono as its fallback (/healthz, /readyz, the web page).
// The server loads this module only once its port is open (server.ts): connect-node, Hono and the
// descriptors of the other services are most of what a cold start evaluates, and the first gRPC
// Send or Subscribe does not need them.
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectError, ConnectRouter, Interceptor } from "@connectrpc/connect";
import { getRequestListener } from "@hono/node-server";
import type { Authenticator } from "../core/auth.ts";
import type { ApiKeys } from "../core/api-keys.ts";
import type { WebhookOutbox } from "../engine/engine.ts";
import type { WebhookEndpoints } from "../webhooks/endpoints.ts";
import type { Logger } from "../log.ts";
import type { ChatCore } from "../core/chat.ts";
import type { Metrics } from "../metrics/index.ts";
import { ChatService as LegacyChatService, file_chat_chat } from "../gen/chat/chat_pb.ts";
import { file_chat_v1_chat } from "../gen/chat/v1/chat_pb.ts";
import { file_chat_v1_server } from "../gen/chat/v1/server_pb.ts";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.ts";
import { file_grpc_reflection_v1_reflection } from "../gen/grpc/reflection/v1/reflection_pb.ts";
import { file_grpc_reflection_v1alpha_reflection } from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { createHttpApp } from "./http.ts";
import { authInterceptor, drainInterceptor } from "./interceptors.ts";
import { applyWireRules } from "./connect-wire.ts";
import { decodeErrorInterceptor, mapUnaryDecodeErrors } from "./decode-errors.ts";
import { registerChatV1 } from "./services/chat-v1.ts";
import { registerServerV1 } from "./services/server-v1.ts";
import { registerHealth, type Readiness } from "./services/health.ts";
import { registerReflection } from "./services/reflection.ts";

export interface RpcOptions {
  core: ChatCore;
  auth: Authenticator;
  /** The server API's keys (chat.v1.ServerService). */
  apiKeys: ApiKeys;
  /** The webhook outbox, when the server sends webhooks (the server API's dead letters). */
  outbox?: WebhookOutbox;
  /** The webhook endpoints (the server API makes, lists and deletes them). */
  webhookEndpoints?: WebhookEndpoints;
  log: Logger;
  readiness: Readiness;
  metrics: Metrics;
  region: string;
  heartbeatSeconds: number;
  maxRequestBytes: number;
  isDraining(): boolean;
  onAuthFailure(err: ConnectError, protocol: string): void;
}

export interface RpcHandler {
  /** The request handler (node:http and node:http2 compatibility API) for Connect and Hono. */
  handle(req: any, res: any): void;
  /** Whether a path is a method whose requests stream (client or bidi streaming). */
  streamingRequests(path: string): boolean;
}

/**
 * The RPC routes: every service, as connectNodeAdapter and createRouterTransport (in-process tests)
 * take them. `streaming` collects the paths of methods whose requests stream.
 */
export function rpcRoutes(o: RpcOptions, streaming = new Set<string>()): (router: ConnectRouter) => void {
  return (router) => {
    registerChatV1(router, o.core);
    registerServerV1(router, o.core, o.apiKeys, o.log, o.outbox, o.webhookEndpoints);
    // The old API is one stream, served by direct.ts; registered so that Connect counts it in the
    // metrics and answers what no stream reaches, as for chat.v1's streams (chat-v1.ts).
    router.service(LegacyChatService, {});
    registerHealth(router, o.readiness, ["chat.v1.ChatService", "chat.v1.ServerService", "chat.ChatService"]);
    registerReflection(router, [
      file_chat_v1_chat,
      file_chat_v1_server,
      file_chat_chat,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
    ]);
    mapUnaryDecodeErrors(router);
    applyWireRules(router);
    o.metrics.grpc.initialize([...new Set(router.handlers.map((h) => h.service))]);
    for (const h of router.handlers) {
      if (h.method.methodKind === "client_streaming" || h.method.methodKind === "bidi_streaming") streaming.add(h.requestPath);
    }
  };
}

/** The interceptors every RPC passes, in order: metrics, drain, auth, decode errors. */
export function rpcInterceptors(o: RpcOptions): Interceptor[] {
  return [o.metrics.grpc.interceptor, drainInterceptor(o.isDraining), authInterceptor(o.auth, o.onAuthFailure), decodeErrorInterceptor()];
}

export function createRpcHandler(o: RpcOptions): RpcHandler {
  const streaming = new Set<string>();
  // The web chat page rides along: its bundle is built in memory on the first visit (app/web/bundle.ts).
  const http = createHttpApp({
    isReady: () => o.readiness.ready,
    region: o.region,
    web: { auth: o.auth, core: o.core, heartbeatSeconds: o.heartbeatSeconds },
  });
  const handle = connectNodeAdapter({
    routes: rpcRoutes(o, streaming),
    fallback: getRequestListener(http.fetch) as unknown as Parameters<typeof connectNodeAdapter>[0]["fallback"],
    readMaxBytes: o.maxRequestBytes,
    interceptors: rpcInterceptors(o),
  });
  return { handle, streamingRequests: (path) => streaming.has(path) };
}
