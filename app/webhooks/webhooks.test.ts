// Webhooks in-process: the signature against the Standard Webhooks library; the endpoints file;
// the core's events into the outbox on the embedded engine (atomically with their entries); the
// dispatcher against real HTTP receivers that answer OK, fail for ever, are down then up, or slow.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { RoomKind } from "../gen/chat/v1/chat_pb.ts";
import { ChatCore } from "../core/chat.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import type { Engine } from "../engine/engine.ts";
import { createLogger } from "../log.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { startReceiver, type Receiver } from "../../test/support/receiver.ts";
import { eventually } from "../../test/support/wait.ts";
import { backoffMs, WebhookDispatcher } from "./dispatcher.ts";
import { parseEndpoints, WebhookEndpoints, type Endpoint } from "./endpoints.ts";
import { webhookRouter } from "./router.ts";
import { newSecret, secretKey, signedHeaders } from "./signing.ts";

test("a signature verifies with the Standard Webhooks library, and fails with another secret or another body", () => {
  const secret = newSecret();
  const body = JSON.stringify({ type: "message.created", data: { text: "hi" } });
  const headers = signedHeaders(secretKey(secret), "msg_1", Math.floor(Date.now() / 1000), body);
  expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: "message.created" });
  expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
  expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
});

test("the endpoints file: what is wrong, and where", () => {
  const ok = { id: "crm", url: "https://crm.example/hooks", secret: newSecret(), events: ["message.created"] };
  expect(parseEndpoints(JSON.stringify({ endpoints: [ok, { ...ok, id: "all", events: ["*"] }] }), "f")[1].events.size).toBe(10);
  const bad = (e: object) => () => parseEndpoints(JSON.stringify({ endpoints: [ok, e] }), "f");
  expect(bad({ ...ok, id: "crm" })).toThrow('f, endpoint 2: a second endpoint with id "crm"');
  expect(bad({ ...ok, id: "x", url: "ftp://a" })).toThrow('f, endpoint 2: "url" must be http or https');
  expect(bad({ ...ok, id: "x", secret: "plain" })).toThrow('f, endpoint 2: a webhook secret starts with "whsec_"');
  expect(bad({ ...ok, id: "x", events: ["message.sent"] })).toThrow("f, endpoint 2: unknown event message.sent");
  expect(() => parseEndpoints("{", "f")).toThrow("f: not JSON");
});

test("backoff doubles from the base, with jitter, up to an hour", () => {
  for (let i = 0; i < 50; i++) {
    const [a, b, c] = [backoffMs(1, 1000), backoffMs(2, 1000), backoffMs(30, 1000)];
    expect(a >= 500 && a <= 1000 && b >= 1000 && b <= 2000 && c >= 1_800_000 && c <= 3_600_000).toBe(true);
  }
});

describe("events", () => {
  let engine: Engine;
  let core: ChatCore;
  const all: Endpoint = { id: "all", url: "http://127.0.0.1:9/", key: secretKey(newSecret()), events: new Set(["*"] as never) };
  beforeEach(() => {
    engine = createEmbeddedEngine(":memory:");
    const endpoints = parseEndpoints(
      JSON.stringify({
        endpoints: [
          { id: "all", url: all.url, secret: newSecret(), events: ["*"] },
          { id: "msgs", url: all.url, secret: newSecret(), events: ["message.created"] },
        ],
      }),
      "t",
    );
    core = new ChatCore({ engine, region: "test", limits: TEST_LIMITS, log: createLogger("error"), events: webhookRouter(endpoints) });
  });
  afterEach(async () => {
    await core.drain();
    await engine.close();
  });
  const waiting = async () => (await engine.outbox!.due(Date.now() + 1, 1000)).map((d) => ({ ...d, body: JSON.parse(d.body) }));

  test("each entry makes its event, stored with it; a message names the members with no stream; a deleted message's carries no text", async () => {
    await core.rooms.create({ user: "olga" }, "team", RoomKind.PUBLIC, "", "");
    await core.rooms.addMember({ user: "olga" }, "team", "ann");
    const ann = await core.open("ann", "test");
    await core.join(ann, "team");
    const m = await core.send("ann", { room: "team" }, "secret plan", "");
    await core.editMessage({ user: "ann" }, "team", m.seq, "the plan", "");
    await core.deleteMessage({ user: "ann" }, "team", m.seq, "");
    await core.rooms.ban({ user: "olga" }, "team", "eve", undefined, "spam");
    await core.rooms.update({ user: "olga" }, "team", { title: "Team" });
    await core.rooms.delete({ user: "olga" }, "team");
    await core.close(ann);
    await eventually(async () => (await waiting()).some((d) => d.type === "user.offline"), 2000, "user.offline", 5);
    const got = await waiting();
    // One of each (the outbox promises no order: retries would undo any).
    expect(
      got
        .filter((d) => d.endpoint === "all")
        .map((d) => d.type)
        .sort(),
    ).toEqual(
      [
        "room.created",
        "member.joined",
        "message.created",
        "message.edited",
        "message.deleted",
        "member.banned",
        "room.updated",
        "room.deleted",
        "user.offline",
      ].sort(),
    );
    // Only what it asked for goes to the second endpoint, with the same event id.
    const created = got.filter((d) => d.type === "message.created");
    expect(created.map((d) => d.endpoint).sort()).toEqual(["all", "msgs"]);
    expect(new Set(created.map((d) => d.eventId)).size).toBe(1);
    expect(created[0].body.data).toMatchObject({ room: "team", message: { text: "secret plan", from: "ann" }, offlineMembers: ["olga"] });
    const deleted = got.find((d) => d.type === "message.deleted")!;
    expect(deleted.body.data).toEqual({ room: "team", by: "ann", seq: String(m.seq) });
    expect(JSON.stringify(got.filter((d) => d.type !== "message.created" && d.type !== "message.edited"))).not.toContain("secret plan");
    expect(got.find((d) => d.type === "member.banned")!.body.data).toMatchObject({ user: "eve", by: "olga", reason: "spam", until: null });
  });
});

describe("delivery", () => {
  let engine: Engine;
  let receiver: Receiver;
  let dispatcher: WebhookDispatcher;
  const secret = newSecret();
  const start = async (opts: Partial<{ maxAttempts: number; retryMs: number; timeoutMs: number }> = {}) => {
    const endpoints = parseEndpoints(JSON.stringify({ endpoints: [{ id: "crm", url: receiver.url, secret, events: ["*"] }] }), "t");
    dispatcher = new WebhookDispatcher(
      engine.outbox!,
      new WebhookEndpoints(endpoints),
      { maxAttempts: 3, retryMs: 20, timeoutMs: 500, pollMs: 10, ...opts },
      createLogger("error"),
    );
    await dispatcher.start();
    return webhookRouter(endpoints);
  };
  beforeEach(async () => {
    engine = createEmbeddedEngine(":memory:");
    receiver = await startReceiver(secret);
  });
  afterEach(async () => {
    await dispatcher.stop();
    await receiver.stop();
    await engine.close();
  });

  test("delivered once, signed; a receiver that fails for ever makes a dead letter after the tries, which redelivery brings back", async () => {
    const router = await start();
    await engine.outbox!.add(router.rows("user.offline", { user: "ann" }));
    await eventually(() => receiver.received.length === 1, 3000, "delivered", 5);
    expect(receiver.received[0]).toMatchObject({ type: "user.offline", verified: true, body: { data: { user: "ann" } } });
    receiver.answer.status = 500;
    const tries = receiver.tries;
    await engine.outbox!.add(router.rows("user.offline", { user: "ben" }));
    await eventually(async () => (await engine.outbox!.deadLetters("", 10)).length === 1, 3000, "a dead letter", 5);
    expect(receiver.tries - tries).toBe(3);
    const [dead] = await engine.outbox!.deadLetters("crm", 10);
    expect(dead).toMatchObject({ attempts: 3, lastError: "HTTP 500", type: "user.offline" });
    receiver.answer.status = 204;
    expect(await engine.outbox!.redeliver("crm")).toBe(1);
    await eventually(() => receiver.received.length === 2, 3000, "redelivered", 5);
    expect(receiver.received[1]).toMatchObject({ id: dead.eventId, verified: true });
    expect(await engine.outbox!.deadLetters("", 10)).toEqual([]);
  });

  test("a receiver that is down, then up, gets it; a slow one is tried again after the timeout, with the same id", async () => {
    const router = await start({ maxAttempts: 10, timeoutMs: 100 });
    await receiver.stop();
    await engine.outbox!.add(router.rows("user.offline", { user: "cat" }));
    await Bun.sleep(100);
    expect((await engine.outbox!.stats()).get("crm")).toMatchObject({ retrying: 1, dead: 0 });
    await receiver.start();
    await eventually(() => receiver.received.length === 1, 3000, "delivered after the receiver came back", 5);
    receiver.answer.delayMs = 300;
    await engine.outbox!.add(router.rows("user.offline", { user: "dan" }));
    await eventually(() => receiver.tries >= 3, 3000, "tried again after timeouts", 5);
    receiver.answer.delayMs = 0;
    await eventually(async () => (await engine.outbox!.stats()).get("crm") === undefined, 3000, "the outbox empty", 5);
    // The slow receiver saw the same event more than once (at least once), with one id.
    const dans = receiver.received.filter((r) => (r.body.data as { user: string }).user === "dan");
    expect(dans.length).toBeGreaterThanOrEqual(1);
    expect(new Set(dans.map((r) => r.id)).size).toBe(1);
  });
});
