// What the terminal client keeps of what its user has seen: each room's recent messages (to quote
// the one a reply answers, and to find the one `/reply @user` answers), and the read state it
// reports as messages show in the room being talked in, at most every 250 ms per room.
import type { Message } from "../gen/chat/v1/chat_pb.ts";

const KEEP = 200;

const isMessage = (m: Message) => !m.change && !m.update && !m.deleted;
const EVERY_MS = 250;

export class Reading {
  private readonly recent = new Map<string, Message[]>();
  private readonly marks = new Map<string, { sent: bigint; want: bigint; timer: ReturnType<typeof setTimeout> }>();

  constructor(private readonly mark: (room: string, seq: bigint) => Promise<unknown>) {}

  /** A message or an entry shown; an entry's message, in its newer state, replaces the one kept. */
  remember(m: Message): void {
    let list = this.recent.get(m.room);
    if (!list) this.recent.set(m.room, (list = []));
    list.push(m);
    if (list.length > KEEP) list.shift();
    const now = m.update?.message;
    if (!now) return;
    const i = list.findIndex((x) => x.seq === now.seq);
    if (i >= 0 && list[i].version < now.version) list[i] = now;
  }

  find(room: string, seq: bigint): Message | undefined {
    return this.recent.get(room)?.find((m) => m.seq === seq);
  }

  /** The newest message `user` wrote in `room` that this client has shown. */
  latestFrom(room: string, user: string): Message | undefined {
    return this.recent.get(room)?.findLast((m) => m.from === user && isMessage(m));
  }

  /** The newest message (not an entry, not deleted) shown in `room`. */
  latest(room: string): Message | undefined {
    return this.recent.get(room)?.findLast(isMessage);
  }

  /** The newest message shown in `room`. */
  newest(room: string): bigint | undefined {
    return this.recent.get(room)?.at(-1)?.seq;
  }

  /** The user sees `room` up to `seq`: told to the server now, then at most every 250 ms. */
  seen(room: string, seq: bigint): void {
    const m = this.marks.get(room);
    if (m) {
      if (seq > m.want) m.want = seq;
      return;
    }
    this.send(room, seq);
  }

  /** As seen(), and waits for the server (a switch to a room: its unread count is then right). */
  async seenNow(room: string, seq: bigint): Promise<void> {
    clearTimeout(this.marks.get(room)?.timer);
    this.marks.delete(room);
    await this.mark(room, seq).catch(() => undefined);
  }

  stop(): void {
    for (const m of this.marks.values()) clearTimeout(m.timer);
    this.marks.clear();
  }

  private send(room: string, seq: bigint): void {
    // Read state is a hint: a failure is not worth a line; the next message tries again.
    void this.mark(room, seq).catch(() => undefined);
    const entry = {
      sent: seq,
      want: seq,
      timer: setTimeout(() => {
        this.marks.delete(room);
        if (entry.want > entry.sent) this.send(room, entry.want);
      }, EVERY_MS),
    };
    entry.timer.unref?.();
    this.marks.set(room, entry);
  }
}
