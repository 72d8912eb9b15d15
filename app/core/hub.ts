// Local fan-out: one bus subscription per topic per instance, shared by every local session that
// listens to it, however many there are.
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { Bus } from "../engine/engine.ts";

/**
 * What gets a topic's events: an object with a method rather than a closure, so that a session's
 * listeners are objects it has anyway (its room feeds), not a function and a scope each.
 */
export interface Listener {
  deliver(event: ChatEvent): void;
}

interface Topic {
  listeners: Set<Listener>;
  subscribed: Promise<() => void>;
}

export class Hub {
  private readonly topics = new Map<string, Topic>();

  constructor(
    private readonly bus: Bus,
    private readonly onListenerError: (err: unknown) => void,
  ) {}

  /** Resolves once `listener` gets every event published on `topic` from now on. */
  async listen(topic: string, listener: Listener): Promise<void> {
    let t = this.topics.get(topic);
    if (!t) {
      const listeners = new Set<Listener>();
      const subscribed = this.bus.subscribe(topic, (event) => {
        for (const l of listeners) {
          try {
            l.deliver(event);
          } catch (err) {
            this.onListenerError(err);
          }
        }
      });
      t = { listeners, subscribed };
      this.topics.set(topic, t);
      // A failed subscription must not stay cached: the next listen retries.
      subscribed.catch(() => this.topics.get(topic) === t && this.topics.delete(topic));
    }
    t.listeners.add(listener);
    await t.subscribed;
  }

  unlisten(topic: string, listener: Listener): void {
    const t = this.topics.get(topic);
    if (!t || !t.listeners.delete(listener) || t.listeners.size > 0) return;
    this.topics.delete(topic);
    t.subscribed.then((unsubscribe) => unsubscribe()).catch(() => {});
  }

  /** Topics that are rooms, not user inboxes ("@" + user). */
  get roomCount(): number {
    let n = 0;
    for (const topic of this.topics.keys()) if (!topic.startsWith("@")) n++;
    return n;
  }
}
