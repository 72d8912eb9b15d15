// The bus on NATS. An instance subscribes only to the topics its sessions listen to:
//   room messages   edgechat.live.<room>    republished by the stream once stored (setup.ts)
//   room events     edgechat.events.<room>  presence and typing, core NATS, not stored
//   user inboxes    edgechat.inbox.<user>   topic "@user": direct-message notices
// Live delivery is core NATS, at most once: a message can be missed while a connection moves to
// another server, or while a new stream leader takes over. RoomFeed repairs a gap as soon as a
// later message arrives; for the room's newest message there may be no later one, so after every
// reconnect, and every few seconds, the newest stored message of each subscribed room is offered
// again if it is newer than the newest seen live. A re-offered message is one the room's feeds
// either had (dropped: seq <= cursor) or missed (delivered, or a gap to fill from history).
// An update entry goes live with the message it changed attached (one lookup), and the room's
// messages after it wait for it, so that they stay in order; the new versions of changed messages
// that the stream republishes too are not events (their entries are).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Msg, Subscription } from "@nats-io/transport-node";
import { ChatEventSchema, MessageSchema, type ChatEvent, type Message } from "../../gen/chat/v1/chat_pb.ts";
import type { Bus } from "../engine.ts";
import type { Logger } from "../../log.ts";
import type { Conn } from "./conn.ts";
import type { NatsHistory } from "./history.ts";
import { eventsSubject, inboxSubject, liveSubject } from "./names.ts";

interface Sub {
  room: string | undefined;
  handler: (event: ChatEvent) => void;
  /** Newest message seq handed to `handler`. */
  seen: bigint;
  /** Set while an update entry is being completed: what comes next waits for it. */
  pending?: Promise<void>;
  subs: Subscription[];
}

const messageEvent = (message: Message): ChatEvent => create(ChatEventSchema, { kind: { case: "message", value: message } });

export class NatsBus implements Bus {
  private readonly subs = new Set<Sub>();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly offConn: () => void;

  constructor(
    private readonly conn: Conn,
    private readonly history: NatsHistory,
    private readonly log: Logger,
    resyncMs: number,
  ) {
    this.timer = setInterval(() => void this.resync(), resyncMs);
    this.timer.unref?.();
    this.offConn = conn.onChange((up) => up && void this.resync());
  }

  async subscribe(topic: string, handler: (event: ChatEvent) => void): Promise<() => void> {
    const nc = this.conn.need();
    const room = topic.startsWith("@") ? undefined : topic;
    const sub: Sub = { room, handler, seen: room === undefined ? 0n : this.history.known(room), subs: [] };
    const events = (err: Error | null, m: Msg) => {
      if (!err) this.deliver(sub, () => fromBinary(ChatEventSchema, m.data));
    };
    if (room === undefined) {
      sub.subs.push(nc.subscribe(inboxSubject(topic.slice(1)), { callback: events }));
    } else {
      sub.subs.push(nc.subscribe(liveSubject(room), { callback: (err, m) => void (err || this.live(sub, m)) }));
      sub.subs.push(nc.subscribe(eventsSubject(room), { callback: events }));
    }
    this.subs.add(sub);
    const off = () => {
      this.subs.delete(sub);
      for (const s of sub.subs) s.unsubscribe();
    };
    try {
      // Once the server has the subscriptions, what is published from now on reaches us.
      await this.conn.call(nc.flush(), "subscribe");
    } catch (err) {
      off();
      throw err;
    }
    return off;
  }

  async publish(topic: string, event: ChatEvent): Promise<void> {
    // A room's messages are already on their way: the stream republished each one the moment it
    // stored it (the core appends before it publishes). Publishing it again would deliver it twice.
    if (event.kind.case === "message" && !topic.startsWith("@")) return;
    const nc = this.conn.need();
    const subject = topic.startsWith("@") ? inboxSubject(topic.slice(1)) : eventsSubject(topic);
    nc.publish(subject, toBinary(ChatEventSchema, event));
  }

  close(): void {
    clearInterval(this.timer);
    this.offConn();
    for (const sub of [...this.subs]) for (const s of sub.subs) s.unsubscribe();
    this.subs.clear();
  }

  private live(sub: Sub, m: Msg): void {
    let message: Message;
    try {
      message = fromBinary(MessageSchema, m.data);
    } catch (err) {
      this.log.warn("undecodable bus message dropped", { err });
      return;
    }
    // A changed message's new version: its entry follows.
    if (message.version > 0n && !message.update) return;
    this.history.observe(sub.room!, Number(message.seq));
    const hand = (ready: Message) => {
      if (ready.seq > sub.seen) sub.seen = ready.seq;
      this.deliver(sub, () => messageEvent(ready));
    };
    if (!message.update && !sub.pending) return hand(message);
    const run = (sub.pending ?? Promise.resolve())
      .then(async () => {
        const ready = message.update ? await this.history.attach(sub.room!, message).catch(() => undefined) : message;
        // Not completed: the next message, or the resync, makes the feeds read it from history.
        if (ready) hand(ready);
      })
      .finally(() => {
        if (sub.pending === run) sub.pending = undefined;
      });
    sub.pending = run;
  }

  private deliver(sub: Sub, decodeEvent: () => ChatEvent): void {
    let event: ChatEvent;
    try {
      event = decodeEvent();
    } catch (err) {
      this.log.warn("undecodable bus message dropped", { err });
      return;
    }
    if (this.subs.has(sub)) sub.handler(event);
  }

  /** Offers each subscribed room's newest message where it is newer than what was delivered. */
  private async resync(): Promise<void> {
    if (!this.conn.connected) return;
    const byRoom = new Map<string, Sub[]>();
    for (const sub of this.subs) if (sub.room !== undefined) byRoom.set(sub.room, [...(byRoom.get(sub.room) ?? []), sub]);
    await Promise.all(
      [...byRoom].map(async ([room, subs]) => {
        const seq = await this.history.newest(room, "nearest").catch(() => 0);
        if (!subs.some((sub) => BigInt(seq) > sub.seen)) return;
        const found = await this.history.message(room, seq).catch(() => null);
        const newest = found?.update ? await this.history.attach(room, found).catch(() => null) : found;
        if (!newest) return;
        for (const sub of subs) {
          if (newest.seq <= sub.seen || !this.subs.has(sub)) continue;
          sub.seen = newest.seq;
          sub.handler(messageEvent(newest));
        }
      }),
    );
  }
}
