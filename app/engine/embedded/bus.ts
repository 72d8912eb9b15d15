// The single-instance bus: publish calls every handler of the topic synchronously, so publish order
// is delivery order.
import type { ChatEvent } from "../../gen/chat/v1/chat_pb.ts";
import type { Bus } from "../engine.ts";

type Handler = (event: ChatEvent) => void;

export class MemoryBus implements Bus {
  private readonly topics = new Map<string, Set<Handler>>();

  async subscribe(topic: string, handler: Handler): Promise<() => void> {
    let handlers = this.topics.get(topic);
    if (!handlers) this.topics.set(topic, (handlers = new Set()));
    // Wrap so that the same function subscribed twice counts twice, like a real broker.
    const entry: Handler = (e) => handler(e);
    handlers.add(entry);
    return () => {
      handlers.delete(entry);
      if (handlers.size === 0 && this.topics.get(topic) === handlers) this.topics.delete(topic);
    };
  }

  async publish(topic: string, event: ChatEvent): Promise<void> {
    const handlers = this.topics.get(topic);
    if (!handlers) return;
    for (const h of handlers) h(event);
  }
}
