// One session's view of one room: delivers every message after the cursor exactly once, in seq
// order. It reads history while it is behind (on join with since_seq, or after seeing a gap) and
// switches to live messages only once history has nothing newer than the newest live seq seen.
// Every message is durable before it is published, so history always covers what the bus skipped.
import type { ChatEvent, Message } from "../gen/chat/v1/chat_pb.ts";
import type { HistoryStore } from "../engine/engine.ts";
import { messageEvent } from "./events.ts";
import type { Session } from "./session.ts";
import type { Listener } from "./hub.ts";

const PAGE = 200;

/** The room's events for this session (the hub's listener for the room): messages in order, and typing and presence. */
export class RoomFeed implements Listener {
  private cursor = 0n;
  private live = false;
  private maxSeen = 0n;
  private stopped = false;

  constructor(
    readonly room: string,
    readonly session: Session,
    private readonly history: HistoryStore,
    /** History could not be read; one function for every feed, told which. */
    private readonly onError: (feed: RoomFeed, err: unknown) => void,
    /** Whether `viewer` must not see `user`'s presence and typing (a block either way); shared by every feed. */
    private readonly hides: (viewer: string, user: string) => boolean = () => false,
  ) {}

  deliver(e: ChatEvent): void {
    switch (e.kind.case) {
      case "message":
        return this.offer(e.kind.value, e);
      case "typing":
      case "presence": {
        const user = e.kind.value.user;
        if (e.kind.case === "typing" && user === this.session.user) return;
        if (!this.hides(this.session.user, user)) this.session.push(e);
        return;
      }
    }
  }

  /** Starts delivery after `since`; live messages offered before this are remembered, not lost. */
  start(since: bigint): void {
    this.cursor = since;
    void this.catchUp();
  }

  /** A live message from the bus; the same event object is shared by every session in the room. */
  offer(message: Message, event = messageEvent(message)): void {
    if (this.stopped || message.seq <= this.cursor) return;
    if (this.live && message.seq === this.cursor + 1n) {
      this.cursor = message.seq;
      this.session.push(event);
      return;
    }
    if (message.seq > this.maxSeen) this.maxSeen = message.seq;
    if (this.live) void this.catchUp();
  }

  stop(): void {
    this.stopped = true;
  }

  private async catchUp(): Promise<void> {
    this.live = false;
    try {
      while (!this.stopped && !this.session.closed) {
        // A page never takes more than half the queue, so live events of other rooms still fit.
        const size = Math.max(1, Math.min(PAGE, this.session.limit >> 1));
        await this.session.waitForRoom(size);
        if (this.stopped || this.session.closed) return;
        const page = await this.history.read(this.room, { afterSeq: this.cursor, limit: size });
        if (this.stopped) return;
        for (const m of page.messages) {
          if (m.seq <= this.cursor) continue;
          this.cursor = m.seq;
          if (!this.session.push(messageEvent(m))) return;
        }
        // No await between this check and going live, so no message can slip between the two.
        if (!page.hasMore && this.cursor >= this.maxSeen) {
          this.live = true;
          return;
        }
      }
    } catch (err) {
      this.onError(this, err);
    }
  }
}
