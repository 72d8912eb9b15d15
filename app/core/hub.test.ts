// Hub on its own, over a bus that counts its subscriptions: one per topic however many listen.
import { expect, test } from "bun:test";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { Bus } from "../engine/engine.ts";
import { MemoryBus } from "../engine/embedded/bus.ts";
import { pongEvent } from "./events.ts";
import { Hub, type Listener } from "./hub.ts";

/** The embedded bus, counting subscribe and unsubscribe calls; `failNext` makes the next subscribe fail. */
class CountingBus implements Bus {
  subscribes = 0;
  unsubscribes = 0;
  failNext = false;
  private readonly bus = new MemoryBus();

  async subscribe(topic: string, handler: (event: ChatEvent) => void): Promise<() => void> {
    this.subscribes++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error("the bus is down");
    }
    const off = await this.bus.subscribe(topic, handler);
    return () => {
      this.unsubscribes++;
      off();
    };
  }

  publish(topic: string, event: ChatEvent): Promise<void> {
    return this.bus.publish(topic, event);
  }
}

const collector = () => {
  const got: string[] = [];
  const l: Listener = { deliver: (e) => got.push(e.kind.case === "pong" ? e.kind.value.nonce : "") };
  return { got, l };
};

test("one bus subscription per topic, shared by every listener; the last to leave ends it", async () => {
  const bus = new CountingBus();
  const hub = new Hub(bus, (err) => {
    throw err;
  });
  const a = collector();
  const b = collector();
  await hub.listen("lobby", a.l);
  await hub.listen("lobby", b.l);
  await hub.listen("@ann", a.l);
  expect(bus.subscribes).toBe(2);
  expect(hub.roomCount).toBe(1);
  await bus.publish("lobby", pongEvent("1"));
  await bus.publish("@ann", pongEvent("2"));
  expect(a.got).toEqual(["1", "2"]);
  expect(b.got).toEqual(["1"]);
  hub.unlisten("lobby", a.l);
  await bus.publish("lobby", pongEvent("3"));
  expect(a.got).toEqual(["1", "2"]);
  expect(b.got).toEqual(["1", "3"]);
  expect(bus.unsubscribes).toBe(0);
  hub.unlisten("lobby", b.l);
  await Bun.sleep(0);
  expect(bus.unsubscribes).toBe(1);
  expect(hub.roomCount).toBe(0);
  // Unlistening what is not listening does nothing.
  hub.unlisten("lobby", b.l);
  hub.unlisten("nowhere", b.l);
  expect(bus.unsubscribes).toBe(1);
});

test("a listener that throws is reported, and the others still get the event", async () => {
  const errors: unknown[] = [];
  const bus = new CountingBus();
  const hub = new Hub(bus, (err) => errors.push(err));
  const good = collector();
  await hub.listen("r", {
    deliver: () => {
      throw new Error("broken listener");
    },
  });
  await hub.listen("r", good.l);
  await bus.publish("r", pongEvent("1"));
  expect(good.got).toEqual(["1"]);
  expect(errors.map((e) => (e as Error).message)).toEqual(["broken listener"]);
});

test("a failed subscription is not cached: the next listen subscribes again", async () => {
  const bus = new CountingBus();
  const hub = new Hub(bus, () => {});
  const a = collector();
  bus.failNext = true;
  await expect(hub.listen("r", a.l)).rejects.toThrow("the bus is down");
  await hub.listen("r", a.l);
  expect(bus.subscribes).toBe(2);
  await bus.publish("r", pongEvent("1"));
  expect(a.got).toEqual(["1"]);
});
