// Webhooks through the real server, to real HTTP receivers that verify each signature with the
// Standard Webhooks library: a receiver that is down when the server is killed with SIGKILL in
// the middle of its retries gets the event after the restart, once, and the others are not sent it
// again; one that answers 500 for ever makes a dead letter, which the server API lists and
// redelivers; the metrics say so. And the message filter hook, rejecting and rewriting.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { ServerService } from "../../app/gen/chat/v1/server_pb.ts";
import { newApiKey } from "../../app/core/api-keys.ts";
import { newSecret } from "../../app/webhooks/signing.ts";
import { chatClient, transport } from "../support/clients.ts";
import { startReceiver, type Receiver } from "../support/receiver.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";
import { WsClient } from "../support/ws-client.ts";

const KEY = newApiKey("ops", ["webhooks"]);
const secrets = { a: newSecret(), b: newSecret(), c: newSecret() };
let receivers: Record<"a" | "b" | "c", Receiver>;
let env: Record<string, string>;
let server: ServerProcess;

beforeAll(async () => {
  receivers = { a: await startReceiver(secrets.a), b: await startReceiver(secrets.b), c: await startReceiver(secrets.c) };
  const file = join(mkdtempSync(join(tmpdir(), "edgechat-webhooks-")), "webhooks.json");
  const endpoint = (id: "a" | "b" | "c", events: string[]) => ({ id, url: receivers[id].url, secret: secrets[id], events });
  writeFileSync(file, JSON.stringify({ endpoints: [endpoint("a", ["*"]), endpoint("b", ["message.created"]), endpoint("c", ["room.created"])] }));
  env = {
    EDGECHAT_WEBHOOKS_FILE: file,
    EDGECHAT_WEBHOOK_MAX_ATTEMPTS: "3",
    EDGECHAT_WEBHOOK_RETRY_MS: "400",
    EDGECHAT_WEBHOOK_TIMEOUT_MS: "1000",
    EDGECHAT_API_KEYS: KEY.line,
  };
  server = await startServer(env);
});
afterAll(async () => {
  await server.stop();
  for (const r of Object.values(receivers)) await r.stop();
});

const send = (s: ServerProcess, text: string) =>
  chatClient(transport(s.url, "grpc")).send({ target: { case: "room", value: "hooks" }, text }, { headers: { "x-user": "ann" } });

test("kill -9 while an endpoint is down and being retried: after the restart it gets the event once; the others are not sent it again", async () => {
  receivers.b.answer.status = 503;
  const m = (await send(server, "deploy at noon")).message!;
  // a's delivery done, that is recorded (a kill between a 2xx and its record sends it again: at least once).
  await eventually(
    async () => /^edgechat_webhook_delivered_total\{endpoint="a"\} 1$/m.test(await (await fetch(server.metricsUrl)).text()),
    5000,
    "a's delivery recorded",
  );
  await eventually(() => receivers.b.tries >= 1, 5000, "b tried");
  await server.stop("SIGKILL");
  receivers.b.answer.status = 200;
  server = await startServer(env, server.dataDir);
  await eventually(() => receivers.b.received.length === 1, 10_000, "b got it after the restart");
  const [b] = receivers.b.received;
  expect(b).toMatchObject({ type: "message.created", verified: true });
  expect((b.body.data as { message: { seq: string; text: string } }).message).toMatchObject({ seq: String(m.seq), text: "deploy at noon" });
  await Bun.sleep(1000);
  expect(receivers.b.received).toHaveLength(1);
  const aCopies = receivers.a.received.filter((r) => r.id === b.id);
  expect(aCopies.map((r) => r.verified)).toEqual([true]);
}, 30_000);

test("an endpoint that answers 500 for ever: a dead letter, listed and redelivered through the server API; the metrics count it", async () => {
  receivers.c.answer.status = 500;
  const owner = chatClient(transport(server.url, "connect"));
  await owner.createRoom({ name: "launch" }, { headers: { "x-user": "olga" } });
  const api = createClient(ServerService, transport(server.url, "connect"));
  const auth = { headers: { authorization: `Bearer ${KEY.key}` } };
  const dead = await eventually(async () => (await api.listDeadLetters({ endpoint: "c" }, auth)).deadLetters[0], 10_000, "a dead letter");
  expect(dead).toMatchObject({ endpoint: "c", type: "room.created", attempts: 3, lastError: "HTTP 500" });
  expect(receivers.c.tries).toBe(3);
  const metrics = await (await fetch(server.metricsUrl)).text();
  expect(metrics).toMatch(/^edgechat_webhook_dead\{endpoint="c"\} 1$/m);
  expect(metrics).toMatch(/^edgechat_webhook_failed_total\{endpoint="c"\} 3$/m);
  expect(metrics).toMatch(/^edgechat_webhook_delivered_total\{endpoint="a"\} [1-9]/m);
  receivers.c.answer.status = 200;
  expect((await api.redeliverDeadLetters({ endpoint: "c" }, auth)).redelivered).toBe(1);
  await eventually(() => receivers.c.received.length === 1, 5000, "c got it");
  expect(receivers.c.received[0]).toMatchObject({ id: dead.id, type: "room.created", verified: true });
  expect((await api.listDeadLetters({}, auth)).deadLetters).toEqual([]);
}, 30_000);

test("the filter hook through the real server: a gRPC Send rejected with the hook's reason, a /ws send rewritten; the metrics count both", async () => {
  const hook = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const { text } = (await req.json()) as { text: string };
      if (text.includes("casino")) return Response.json({ action: "reject", reason: "no gambling ads" });
      return Response.json({ action: "rewrite", text: text.replaceAll("heck", "h*ck") });
    },
  });
  const filtered = await startServer({ EDGECHAT_FILTER_URL: `http://127.0.0.1:${hook.port}/check`, EDGECHAT_FILTER_SECRET: newSecret() });
  try {
    const grpcClient = chatClient(transport(filtered.url, "grpc"));
    const refused = await grpcClient.send({ target: { case: "room", value: "f" }, text: "best casino here" }, { headers: { "x-user": "eve" } }).catch((e) => e);
    expect([refused.code, refused.rawMessage]).toEqual([7, "the message was refused: no gambling ads"]);
    const ws = new WsClient(`ws://127.0.0.1:${filtered.port}/ws`, { headers: { "x-user": "ann" } });
    await ws.until((c) => c.of("ready").length > 0, "/ws ready");
    ws.send({ kind: { case: "send", value: { target: { case: "room", value: "f" }, text: "what the heck", clientMsgId: "w1" } } });
    const ack = await ws.until((c) => c.of("ack")[0], "the ack");
    expect(ack.message?.text).toBe("what the h*ck");
    await ws.close();
    const metrics = await (await fetch(filtered.metricsUrl)).text();
    expect(metrics).toMatch(/^edgechat_filter_total\{outcome="reject"\} 1$/m);
    expect(metrics).toMatch(/^edgechat_filter_total\{outcome="rewrite"\} 1$/m);
  } finally {
    await filtered.stop();
    hook.stop(true);
  }
}, 30_000);
