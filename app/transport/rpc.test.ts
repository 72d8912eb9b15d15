// The RPC routes in-process: the services with their interceptors (metrics, drain, auth, decode
// errors) through createRouterTransport, on the core over the in-memory engine. What needs a
// socket (protocols, HTTP versions, the direct path) is in test/e2e.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { ChatService } from "../gen/chat/v1/chat_pb.ts";
import { HealthCheckResponse_ServingStatus, Health } from "../gen/grpc/health/v1/health_pb.ts";
import { createAuthenticator } from "../core/auth.ts";
import { ApiKeys } from "../core/api-keys.ts";
import { ChatCore } from "../core/chat.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import type { Engine } from "../engine/engine.ts";
import { createLogger } from "../log.ts";
import { createMetrics, type Metrics } from "../metrics/index.ts";
import { createReadiness } from "./readiness.ts";
import { rpcInterceptors, rpcRoutes, type RpcOptions } from "./rpc.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";

let engine: Engine;
let core: ChatCore;
let metrics: Metrics;
let draining = false;
let authFailures: string[] = [];

beforeEach(() => {
  engine = createEmbeddedEngine(":memory:");
  core = new ChatCore({
    engine,
    region: "test",
    log: createLogger("error"),
    limits: TEST_LIMITS,
  });
  metrics = createMetrics({ rooms: () => core.roomCount, tasks: () => 0 });
  draining = false;
  authFailures = [];
});
afterEach(async () => {
  metrics.stop();
  await core.drain();
  await engine.close();
});

function clients() {
  const o: RpcOptions = {
    core,
    auth: createAuthenticator({}),
    apiKeys: new ApiKeys([]),
    log: createLogger("error"),
    readiness: createReadiness(true),
    metrics,
    region: "test",
    heartbeatSeconds: 15,
    maxRequestBytes: 65536,
    isDraining: () => draining,
    onAuthFailure: (err) => authFailures.push(err.rawMessage),
  };
  const transport = createRouterTransport(rpcRoutes(o), { router: { interceptors: rpcInterceptors(o) } });
  return { chat: createClient(ChatService, transport), health: createClient(Health, transport) };
}

const as = (user: string) => ({ headers: { "x-user": user } });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => "no error",
    (err) => `${Code[ConnectError.from(err).code]}: ${ConnectError.from(err).rawMessage}`,
  );

test("Send stores the message; History, ListRooms and ListOnline show it", async () => {
  const { chat } = clients();
  const sent = await chat.send({ target: { case: "room", value: "lobby" }, text: "hello", clientMsgId: "c1" }, as("ann"));
  expect([sent.message?.seq, sent.message?.from, sent.message?.text]).toEqual([1n, "ann", "hello"]);
  // A retry with the same client id stores nothing new.
  const again = await chat.send({ target: { case: "room", value: "lobby" }, text: "hello", clientMsgId: "c1" }, as("ann"));
  expect(again.message?.id).toBe(sent.message?.id);
  const history = await chat.history({ room: "lobby", limit: 10 }, as("ben"));
  expect(history.messages.map((m) => m.text)).toEqual(["hello"]);
  const rooms = await chat.listRooms({}, as("ann"));
  expect(rooms.rooms.map((r) => r.name)).toContain("lobby");
  expect((await chat.listOnline({ room: "lobby" }, as("ann"))).users).toEqual([]);
  // A direct message goes to the pair's room.
  const dm = await chat.send({ target: { case: "toUser", value: "ben" }, text: "psst" }, as("ann"));
  expect(dm.message?.room).toBe("dm:ann:ben");
});

test("no user, or a bad one: Unauthenticated or InvalidArgument, saying what is wrong", async () => {
  const { chat } = clients();
  const refused = await failure(chat.send({ target: { case: "room", value: "lobby" }, text: "x" }));
  expect(refused).toStartWith("Unauthenticated: no user");
  const bad = await failure(chat.history({ room: "lobby", limit: 1 }, as("no spaces")));
  expect(bad).toStartWith("InvalidArgument: x-user must be");
  // A credential the authenticator refused is reported (for the metrics); a missing one in dev mode is not.
  expect(authFailures).toEqual([bad.slice("InvalidArgument: ".length)]);
});

test("bad input gets the core's precise errors through the services", async () => {
  const { chat } = clients();
  expect(await failure(chat.send({ target: { case: "room", value: "bad room!" }, text: "x" }, as("ann")))).toBe(
    'InvalidArgument: room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "bad room!")',
  );
  expect(await failure(chat.history({ room: "dm:amy:zed", limit: 1 }, as("ann")))).toBe(
    'PermissionDenied: room "dm:amy:zed" is a direct conversation between two other users',
  );
  expect(await failure(chat.send({ target: { case: "room", value: "r" }, text: "" }, as("ann")))).toBe(
    "InvalidArgument: text is empty: send 1 or more characters",
  );
});

test("draining: new chat calls are refused with where to go; health still answers", async () => {
  const { chat, health } = clients();
  draining = true;
  const refused = await failure(chat.send({ target: { case: "room", value: "lobby" }, text: "x" }, as("ann")));
  expect(refused).toBe("Unavailable: server is shutting down; connect to another instance");
  expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
});

test("the streams are not served here (direct.ts serves every one), and the metrics count every call", async () => {
  const { chat } = clients();
  const stream = await failure(
    (async () => {
      for await (const _ of chat.subscribe({ rooms: ["lobby"] }, as("ann"))) break;
    })(),
  );
  expect(stream).toBe("Unimplemented: chat.v1.ChatService.Subscribe is not implemented");
  await chat.send({ target: { case: "room", value: "lobby" }, text: "x" }, as("ann"));
  const text = await metrics.registry.metrics();
  expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_method="Send"[^}]*grpc_code="OK"[^}]*\} 1/);
});
