import { eventually } from "../../../test/support/wait.ts";
import { describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.ts";
import { createReadiness, registerHealth, type Readiness } from "./health.ts";

const SERVICES = ["chat.v1.ChatService", "chat.ChatService"];

// Wraps a Readiness to count live subscriptions, so that tests can prove Watch cleans up.
function counting(inner: Readiness) {
  let active = 0;
  const readiness: Readiness = {
    get ready() {
      return inner.ready;
    },
    onChange(listener) {
      active++;
      const off = inner.onChange(listener);
      return () => {
        active--;
        off();
      };
    },
  };
  return { readiness, active: () => active };
}

function setup(initial: boolean) {
  const readiness = createReadiness(initial);
  const counted = counting(readiness);
  const transport = createRouterTransport((router) => registerHealth(router, counted.readiness, SERVICES));
  return { readiness, active: counted.active, client: createClient(Health, transport) };
}

const until = (condition: () => boolean, ms = 1000) => eventually(condition, ms, "condition", 5);

describe("createReadiness", () => {
  test("notifies only on change, and not after unsubscribe", () => {
    const readiness = createReadiness();
    expect(readiness.ready).toBe(false);
    const seen: boolean[] = [];
    const off = readiness.onChange((r) => seen.push(r));
    readiness.set(false);
    readiness.set(true);
    readiness.set(true);
    readiness.set(false);
    off();
    readiness.set(true);
    expect(seen).toEqual([true, false]);
    expect(readiness.ready).toBe(true);
  });
});

describe("Health.Check", () => {
  test("reports SERVING for the server and each service while ready", async () => {
    const { client } = setup(true);
    for (const service of ["", ...SERVICES]) {
      expect((await client.check({ service })).status).toBe(Status.SERVING);
    }
  });

  test("reports NOT_SERVING while not ready, and follows changes", async () => {
    const { client, readiness } = setup(false);
    expect((await client.check({ service: "" })).status).toBe(Status.NOT_SERVING);
    expect((await client.check({ service: "chat.v1.ChatService" })).status).toBe(Status.NOT_SERVING);
    readiness.set(true);
    expect((await client.check({ service: "chat.v1.ChatService" })).status).toBe(Status.SERVING);
  });

  test("fails with NOT_FOUND for an unknown service", async () => {
    const { client } = setup(true);
    const err = await client.check({ service: "nope.v1.Nope" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).rawMessage).toContain("nope.v1.Nope");
  });
});

describe("Health.List", () => {
  test("lists the server and every service with its status", async () => {
    const { client, readiness } = setup(true);
    const list = await client.list({});
    expect(Object.keys(list.statuses).sort()).toEqual(["", "chat.ChatService", "chat.v1.ChatService"]);
    expect(Object.values(list.statuses).map((s) => s.status)).toEqual([Status.SERVING, Status.SERVING, Status.SERVING]);
    readiness.set(false);
    expect((await client.list({})).statuses["chat.ChatService"]?.status).toBe(Status.NOT_SERVING);
  });
});

describe("Health.Watch", () => {
  test("sends the current status, then each change, and unsubscribes on cancel", async () => {
    const { client, readiness, active } = setup(false);
    const abort = new AbortController();
    const stream = client.watch({ service: "chat.v1.ChatService" }, { signal: abort.signal })[Symbol.asyncIterator]();

    expect((await stream.next()).value?.status).toBe(Status.NOT_SERVING);
    expect(active()).toBe(1);
    readiness.set(true);
    expect((await stream.next()).value?.status).toBe(Status.SERVING);
    readiness.set(false);
    expect((await stream.next()).value?.status).toBe(Status.NOT_SERVING);

    // Cancel while the handler is parked waiting for the next change.
    const pending = stream.next().catch((e: unknown) => e);
    abort.abort();
    const err = await pending;
    expect(ConnectError.from(err).code).toBe(Code.Canceled);
    await until(() => active() === 0);
  });

  test("streams SERVICE_UNKNOWN for an unknown service instead of failing", async () => {
    const { client, active } = setup(true);
    const abort = new AbortController();
    const stream = client.watch({ service: "nope.v1.Nope" }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(Status.SERVICE_UNKNOWN);
    abort.abort();
    await stream.next().catch(() => undefined);
    await until(() => active() === 0);
  });
});
