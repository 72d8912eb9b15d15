// chat.v1.ServerService in-process (createRouterTransport, the real interceptors, the core on the
// in-memory engine): API keys and their scopes, what a key may not be used for, and each call's
// effect as users see it. The end-to-end test (test/e2e/server-api.test.ts) takes the sockets.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Code, createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import { ChatService, RoomKind, Role } from "../../gen/chat/v1/chat_pb.ts";
import { ServerService } from "../../gen/chat/v1/server_pb.ts";
import { ApiKeys, newApiKey, parseApiKeys, SCOPES } from "../../core/api-keys.ts";
import { createAuthenticator } from "../../core/auth.ts";
import { ChatCore } from "../../core/chat.ts";
import { createEmbeddedEngine } from "../../engine/embedded/index.ts";
import type { Engine } from "../../engine/engine.ts";
import { createLogger, type Logger } from "../../log.ts";
import { createMetrics, type Metrics } from "../../metrics/index.ts";
import { createReadiness } from "../readiness.ts";
import { rpcInterceptors, rpcRoutes } from "../rpc.ts";
import { TEST_LIMITS } from "../../../test/support/limits.ts";
import { refusal } from "../../../test/support/refusal.ts";
import { eventually } from "../../../test/support/wait.ts";
import { Webhook } from "standardwebhooks";
import { parseEndpoints, WebhookEndpoints } from "../../webhooks/endpoints.ts";
import { webhookRouter } from "../../webhooks/router.ts";
import { WebhookDispatcher } from "../../webhooks/dispatcher.ts";
import { newSecret } from "../../webhooks/signing.ts";

const all = newApiKey("backend", [...SCOPES]);
const readOnly = newApiKey("reports", ["read"]);
let engine: Engine;
let core: ChatCore;
let metrics: Metrics;
let logged: Record<string, unknown>[];
let transport: Transport;

beforeEach(() => {
  engine = createEmbeddedEngine(":memory:");
  core = new ChatCore({ engine, region: "test", log: createLogger("error"), limits: { ...TEST_LIMITS, ratePerSecond: 0.001, rateBurst: 2 } });
  metrics = createMetrics({ rooms: () => core.roomCount, tasks: () => 0 });
  logged = [];
  const log = { ...createLogger("error"), info: (msg: string, f?: Record<string, unknown>) => logged.push({ msg, ...f }) } as Logger;
  const o = {
    core,
    auth: createAuthenticator({}),
    apiKeys: new ApiKeys(parseApiKeys(`${all.line}\n${readOnly.line} # reports can only read`, "test")),
    log,
    readiness: createReadiness(true),
    metrics,
    region: "test",
    heartbeatSeconds: 15,
    maxRequestBytes: 65536,
    isDraining: () => false,
    onAuthFailure: () => {},
  };
  transport = createRouterTransport(rpcRoutes(o), { router: { interceptors: rpcInterceptors(o) } });
});
afterEach(async () => {
  metrics.stop();
  await core.drain();
  await engine.close();
});

const server = () => createClient(ServerService, transport);
const chat = () => createClient(ChatService, transport);
const key = (k: string) => ({ headers: { authorization: `Bearer ${k}` } });
const as = (user: string) => ({ headers: { "x-user": user } });

describe("keys", () => {
  test("the key's line: name, scopes and SHA-256; malformed lines are refused at start, naming the entry", () => {
    expect(all.key).toStartWith("ek_");
    expect(all.line).toMatch(/^backend \* [0-9a-f]{64}$/);
    expect(readOnly.line).toMatch(/^reports read [0-9a-f]{64}$/);
    expect(() => parseApiKeys("backend publish", "X")).toThrow('X, entry 1: expected "<name> <scopes> <sha256>", got 2 fields');
    expect(() => parseApiKeys(`a publish ${"0".repeat(64)}; b write ${"0".repeat(64)}`, "X")).toThrow(
      "X, entry 2: unknown scope write: the scopes are publish, rooms, moderate, read, webhooks, or * for all",
    );
    expect(() => parseApiKeys("a read 1234", "X")).toThrow("X, entry 1: the key's SHA-256 must be 64 hex digits");
    expect(() => parseApiKeys(`no/way read ${"0".repeat(64)}`, "X")).toThrow("X, entry 1: the key's name must be");
  });

  test("no key, a user's token, an unknown key, a browser, a missing scope: refused, nothing done", async () => {
    const publish = (opts: object) => refusal(server().publish({ target: { case: "room", value: "r" }, from: "bot", text: "hi" }, opts));
    expect(await publish({})).toBe("Unauthenticated: the server API needs `authorization: Bearer <API key>` (edgechat apikey makes one)");
    expect(await publish(key("eyJhbGciOiJIUzI1NiJ9.e30.sig"))).toBe("Unauthenticated: the server API takes an API key (ek_...), not a user's token");
    expect(await publish(key("ek_nothing"))).toBe("Unauthenticated: unknown API key");
    expect(await publish({ headers: { authorization: `Bearer ${all.key}`, origin: "https://example.com" } })).toBe(
      "PermissionDenied: the server API is for servers: this request came from a browser (it has an Origin header); keep API keys out of pages",
    );
    expect(await publish(key(readOnly.key))).toBe('PermissionDenied: the API key "reports" does not have the scope "publish"');
    expect((await server().history({ room: "r" }, key(readOnly.key))).messages).toEqual([]);
    // A key on the user API: refused, saying where it belongs.
    expect(await refusal(chat().send({ target: { case: "room", value: "r" }, text: "x" }, key(all.key)))).toBe(
      "Unauthenticated: this is an API key: it works on chat.v1.ServerService only; users call ChatService with their own token",
    );
    expect(logged.filter((l) => l.msg === "server api call").map((l) => [l.key, l.method])).toEqual([["reports", "History"]]);
  });
});

describe("calls", () => {
  test("Publish: as a bot into a private room and to a user's DMs, with the seq, order and idempotency of a send, held to no user's rate", async () => {
    await core.rooms.create({ user: "olga" }, "staff", RoomKind.PRIVATE, "", "");
    const sent = [];
    for (let i = 0; i < 5; i++) {
      sent.push(
        (await server().publish({ target: { case: "room", value: "staff" }, from: "deploy-bot", text: `deploy ${i}`, idempotencyKey: `d${i}` }, key(all.key)))
          .message!,
      );
    }
    expect(sent.map((m) => [m.seq, m.from])).toEqual([2n, 3n, 4n, 5n, 6n].map((s) => [s, "deploy-bot"]));
    const again = await server().publish(
      { target: { case: "room", value: "staff" }, from: "deploy-bot", text: "deploy 0 again", idempotencyKey: "d0" },
      key(all.key),
    );
    expect(again.message?.id).toBe(sent[0].id);
    const dm = await server().publish({ target: { case: "toUser", value: "ann" }, from: "support", text: "your ticket is closed" }, key(all.key));
    expect(dm.message?.room).toBe("dm:ann:support");
    expect((await chat().listRooms({}, as("ann"))).rooms.find((r) => r.name === "dm:ann:support")).toMatchObject({ unread: 1 });
    expect(await refusal(server().publish({ target: { case: "room", value: "staff" }, from: "not a user", text: "x" }, key(all.key)))).toStartWith(
      "InvalidArgument: from must be",
    );
    expect(await refusal(server().publish({ target: { case: "room", value: "staff" }, from: "bot", text: "" }, key(all.key)))).toBe(
      "InvalidArgument: text is empty: send 1 or more characters",
    );
    expect(logged.filter((l) => l.msg === "server api call" && l.method === "Publish")[0]).toMatchObject({ key: "backend", from: "deploy-bot", room: "staff" });
  });

  test("rooms and moderation as the key's user, a server-wide admin: create, members, roles, ban, mute, delete a message; read any room", async () => {
    const made = await server().createRoom({ name: "vip", kind: RoomKind.PRIVATE, title: "VIP" }, key(all.key));
    expect(made.room).toMatchObject({ name: "vip", createdBy: "backend" });
    await server().addMember({ room: "vip", user: "ann" }, key(all.key));
    await server().setRole({ room: "vip", user: "ann", role: Role.OWNER }, key(all.key));
    const m = (await chat().send({ target: { case: "room", value: "vip" }, text: "spam" }, as("ann"))).message!;
    await server().mute({ room: "vip", user: "ann" }, key(all.key));
    expect(await refusal(chat().send({ target: { case: "room", value: "vip" }, text: "more" }, as("ann")))).toBe(
      'PermissionDenied: you are muted in room "vip" for good',
    );
    const deleted = await server().deleteMessage({ room: "vip", seq: m.seq }, key(all.key));
    expect(deleted.message).toMatchObject({ deleted: true, text: "" });
    expect(deleted.entry?.from).toBe("backend");
    await server().ban({ room: "vip", user: "eve", reason: "fraud" }, key(all.key));
    const members = await server().listMembers({ room: "vip" }, key(readOnly.key));
    expect(members.members.map((x) => [x.user, x.role])).toEqual([
      ["ann", Role.OWNER],
      ["backend", Role.OWNER],
    ]);
    expect(members.banned.map((b) => [b.user, b.by, b.reason])).toEqual([["eve", "backend", "fraud"]]);
    const page = await server().history({ room: "vip", afterSeq: 0n }, key(readOnly.key));
    // Created, ann added, made owner; her message (deleted now); muted; the delete; eve banned.
    expect(page.messages.map((x) => [x.from, x.deleted])).toEqual([
      ["backend", false],
      ["backend", false],
      ["backend", false],
      ["ann", true],
      ["backend", false],
      ["backend", false],
      ["backend", false],
    ]);
    expect((await server().getRoom({ room: "vip" }, key(readOnly.key))).room?.title).toBe("VIP");
    await server().deleteRoom({ room: "vip" }, key(all.key));
    // Gone with its history: the name is a room nobody created again.
    expect((await server().getRoom({ room: "vip" }, key(all.key))).room).toMatchObject({ kind: RoomKind.UNSPECIFIED, createdBy: "" });
    expect((await server().history({ room: "vip" }, key(readOnly.key))).messages).toEqual([]);
  });

  test("Disconnect ends every stream of the user with the reason; others stay; ListOnline sees everyone", async () => {
    const [one, two, other] = await Promise.all([core.open("ann", "test"), core.open("ann", "test"), core.open("ben", "test")]);
    await core.join(one, "lobby");
    expect((await server().listOnline({ room: "lobby" }, key(readOnly.key))).users.map((u) => u.user)).toEqual(["ann"]);
    await server().disconnect({ user: "ann", reason: "account closed" }, key(all.key));
    const ended = await Promise.all([one.ended, two.ended]);
    expect(ended.map((e) => [e?.code, e?.rawMessage])).toEqual([
      [Code.PermissionDenied, "the server disconnected you: account closed"],
      [Code.PermissionDenied, "the server disconnected you: account closed"],
    ]);
    expect(other.closed).toBe(false);
    await eventually(async () => (await server().listOnline({ room: "lobby" }, key(readOnly.key))).users.length === 0, 3000, "ann offline", 5);
    expect(await refusal(server().disconnect({ user: "ann", reason: "x".repeat(201) }, key(all.key)))).toBe(
      "InvalidArgument: reason is longer than 200 characters",
    );
    expect(await refusal(server().disconnect({ user: "ann" }, key(readOnly.key)))).toBe(
      'PermissionDenied: the API key "reports" does not have the scope "moderate"',
    );
  });
});

test("a call refused for its key is counted by the RPC metrics like any other", async () => {
  await refusal(server().publish({ target: { case: "room", value: "r" }, from: "bot", text: "hi" }, {}));
  const text = await metrics.registry.metrics();
  expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_service="chat\.v1\.ServerService"[^}]*grpc_code="Unauthenticated"[^}]*\} 1/);
});

describe("webhook endpoints made through the server API", () => {
  test("made with a secret shown once, delivered to (verified with that secret), listed without secrets beside the file's, deleted", async () => {
    const receiver = await startReceiverFor();
    const e2 = createEmbeddedEngine(":memory:");
    await Bun.sleep(1);
    const fileSecret = newSecret();
    const registry = new WebhookEndpoints(
      parseEndpoints(JSON.stringify({ endpoints: [{ id: "file", url: "http://127.0.0.1:9/", secret: fileSecret, events: ["room.created"] }] }), "f"),
      e2.access,
    );
    const c2 = new ChatCore({ engine: e2, region: "test", log: createLogger("error"), limits: TEST_LIMITS, events: webhookRouter(registry) });
    const dispatcher = new WebhookDispatcher(e2.outbox!, registry, { maxAttempts: 3, retryMs: 20, timeoutMs: 500, pollMs: 10 }, createLogger("error"));
    await dispatcher.start();
    const m2 = createMetrics({ rooms: () => 0, tasks: () => 0 });
    const o = {
      core: c2,
      auth: createAuthenticator({}),
      apiKeys: new ApiKeys(parseApiKeys(all.line, "test")),
      log: createLogger("error"),
      readiness: createReadiness(true),
      metrics: m2,
      region: "test",
      heartbeatSeconds: 15,
      maxRequestBytes: 65536,
      isDraining: () => false,
      onAuthFailure: () => {},
      outbox: e2.outbox,
      webhookEndpoints: registry,
    };
    const api = createClient(ServerService, createRouterTransport(rpcRoutes(o), { router: { interceptors: rpcInterceptors(o) } }));
    try {
      const made = await api.createWebhookEndpoint({ id: "crm", url: receiver.url, events: ["message.created"] }, key(all.key));
      expect(made.secret).toStartWith("whsec_");
      receiver.secret(made.secret);
      expect(await refusal(api.createWebhookEndpoint({ id: "crm", url: receiver.url, events: ["*"] }, key(all.key)))).toBe(
        'AlreadyExists: a webhook endpoint "crm" exists already',
      );
      expect(await refusal(api.createWebhookEndpoint({ id: "bad", url: "ftp://x", events: ["*"] }, key(all.key)))).toBe(
        'InvalidArgument: "url" must be http or https',
      );
      await c2.send("ann", { room: "r" }, "to the crm", "");
      await eventually(() => receiver.received.length === 1, 3000, "delivered", 5);
      expect(receiver.received[0]).toMatchObject({ type: "message.created", verified: true });
      const listed = await api.listWebhookEndpoints({}, key(all.key));
      expect(listed.endpoints.map((e) => [e.id, e.fromFile, e.events])).toEqual([
        ["file", true, ["room.created"]],
        ["crm", false, ["message.created"]],
      ]);
      expect(JSON.stringify(listed)).not.toContain("whsec_");
      expect(await refusal(api.deleteWebhookEndpoint({ id: "file" }, key(all.key)))).toBe(
        'FailedPrecondition: webhook endpoint "file" is in EDGECHAT_WEBHOOKS_FILE: change the file instead',
      );
      await api.deleteWebhookEndpoint({ id: "crm" }, key(all.key));
      await c2.send("ann", { room: "r" }, "not any more", "");
      await Bun.sleep(200);
      expect(receiver.received).toHaveLength(1);
      expect(await refusal(api.deleteWebhookEndpoint({ id: "crm" }, key(all.key)))).toBe('NotFound: no webhook endpoint "crm"');
    } finally {
      await dispatcher.stop();
      m2.stop();
      await c2.drain();
      await e2.close();
      await receiver.stop();
    }
  });
});

/** A receiver whose secret is known only once the endpoint is made. */
async function startReceiverFor() {
  let verify: Webhook | undefined;
  const received: { type: string; verified: boolean }[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      let verified = false;
      try {
        verify?.verify(body, Object.fromEntries(req.headers));
        verified = verify !== undefined;
      } catch {}
      received.push({ type: (JSON.parse(body) as { type: string }).type, verified });
      return new Response(null, { status: 204 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/`,
    received,
    secret: (s: string) => (verify = new Webhook(s)),
    stop: () => server.stop(true),
  };
}
