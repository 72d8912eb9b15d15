// Presence is what every member of a room hears when someone arrives or goes. A client that joins
// and leaves in a loop would make each member of the room hear every step of it, so a room's
// presence events pass at most `perSecond` a second (bursts of as many); past that they wait, and
// what waits is coalesced per user: only the net change goes out. Someone who joined and left
// again while waiting was never seen, someone who left and came back never went.
//
// One gate per instance: it bounds what this instance publishes. A shared bus carries the events
// of every instance, each bounded the same way.

interface Held {
  /** The first change held: the user's state before it was the opposite. */
  first: boolean;
  last: boolean;
  region: string;
}

interface RoomGate {
  tokens: number;
  at: number;
  /** Changes waiting for a token, by user, in the order they came. */
  held: Map<string, Held>;
  timer?: ReturnType<typeof setTimeout>;
}

export type PresencePublish = (room: string, user: string, joined: boolean, region: string) => void;

export class PresenceGate {
  private readonly rooms = new Map<string, RoomGate>();

  constructor(
    private readonly publish: PresencePublish,
    private readonly perSecond = 20,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A user's first session entered (`joined`) or last session left a room on this instance. */
  note(room: string, user: string, joined: boolean, region: string): void {
    let g = this.rooms.get(room);
    if (!g) this.rooms.set(room, (g = { tokens: this.perSecond, at: this.now(), held: new Map() }));
    this.refill(g);
    // Nothing waits, so nothing is overtaken: out at once.
    if (g.held.size === 0 && g.tokens >= 1) {
      g.tokens -= 1;
      this.publish(room, user, joined, region);
      return;
    }
    const h = g.held.get(user);
    if (h) {
      h.last = joined;
      h.region = region;
    } else {
      g.held.set(user, { first: joined, last: joined, region });
    }
    this.schedule(room, g);
  }

  /** Forgets rooms that hold nothing and have their whole burst again. */
  sweep(): void {
    for (const [room, g] of this.rooms) {
      this.refill(g);
      if (g.held.size === 0 && g.tokens >= this.perSecond) this.rooms.delete(room);
    }
  }

  /** Rooms the gate keeps state for. */
  get size(): number {
    return this.rooms.size;
  }

  close(): void {
    for (const g of this.rooms.values()) clearTimeout(g.timer);
    this.rooms.clear();
  }

  private release(room: string, g: RoomGate): void {
    g.timer = undefined;
    this.refill(g);
    for (const [user, h] of g.held) {
      if (h.first !== h.last) {
        g.held.delete(user);
        continue;
      }
      if (g.tokens < 1) break;
      g.tokens -= 1;
      g.held.delete(user);
      this.publish(room, user, h.last, h.region);
    }
    if (g.held.size > 0) this.schedule(room, g);
  }

  private schedule(room: string, g: RoomGate): void {
    if (g.timer) return;
    const waitMs = Math.max(10, Math.ceil(((1 - g.tokens) / this.perSecond) * 1000));
    g.timer = setTimeout(() => this.release(room, g), waitMs);
    g.timer.unref?.();
  }

  private refill(g: RoomGate): void {
    const now = this.now();
    g.tokens = Math.min(this.perSecond, g.tokens + ((now - g.at) / 1000) * this.perSecond);
    g.at = now;
  }
}
