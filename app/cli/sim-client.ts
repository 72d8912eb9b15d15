// One simulated user of `edgechat sim`, and the bookkeeping they all share: what was sent and
// acknowledged, what each client received, and whether every client saw every room's messages
// exactly once and in order. Changes (edits, deletes, reactions) are entries with seqs of their own,
// so the same checks cover them; besides, every client must end with each changed message in the
// same state (the highest version any client saw).
import { ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { QUICK_REACTIONS } from "../rules/reactions.ts";

/** What a client does: send a message, or change one. */
export type Op = "send" | "edit" | "delete" | "react";
import { codeName, Connection, type ChatStream, type Protocol } from "./connection.ts";

/** Counters and samples shared by all the clients of one simulator (all in this process). */
export class SimStats {
  sessions = 0;
  sessionsFailed = 0;
  sent = 0;
  acknowledged = 0;
  delivered = 0;
  duplicates = 0;
  outOfOrder = 0;
  readonly errors = new Map<string, number>();
  /** Delivery latencies, ms: receive time minus the sender's send time. */
  readonly latencies: number[] = [];
  /** client_msg_id -> when it was sent (performance.now()). */
  readonly sentAt = new Map<string, number>();
  /** Per room, the seqs acknowledged to our senders, and the highest. */
  readonly ackedSeqs = new Map<string, number[]>();
  readonly maxAcked = new Map<string, number>();
  /** Changes sent, by kind. */
  readonly changes = { edit: 0, delete: 0, react: 0 };
  /** Changes acknowledged that changed nothing (a reaction toggled back meanwhile...). */
  noops = 0;
  /** Changes refused because their message was deleted meanwhile: a race the mix makes on purpose. */
  raced = 0;
  /** Per room, the acknowledged messages (not entries), and those deleted or being deleted. */
  readonly messages = new Map<string, number[]>();
  readonly deleted = new Set<string>();
  /** What each request in flight is, by client_msg_id. */
  readonly ops = new Map<string, Op>();

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  ack(room: string, seq: number): void {
    this.acknowledged++;
    let list = this.ackedSeqs.get(room);
    if (!list) this.ackedSeqs.set(room, (list = []));
    list.push(seq);
    if (seq > (this.maxAcked.get(room) ?? 0)) this.maxAcked.set(room, seq);
  }
}

/**
 * What one client has received of one room. Seqs from `baseline` + 1 on are expected, each once,
 * in order; `contig` is the highest seq up to which all were received, `extra` holds the ones
 * received beyond a gap (there should be none).
 */
export class RoomView {
  contig: number;
  max: number;
  /** Once the stream is over: the last seq it could have received. */
  until = Infinity;
  private readonly extra = new Set<number>();

  constructor(readonly baseline: number) {
    this.contig = baseline;
    this.max = baseline;
  }

  /** Whether this view should receive `seq`: sent after it joined and before it ended. */
  expects(seq: number): boolean {
    return seq > this.baseline && seq <= this.until;
  }

  has(seq: number): boolean {
    return seq <= this.contig || this.extra.has(seq);
  }

  /** Records a delivery: "ok", "duplicate" (seen before) or "out-of-order" (after a higher one). */
  receive(seq: number): "ok" | "duplicate" | "out-of-order" {
    if (this.has(seq)) return "duplicate";
    const late = seq < this.max;
    if (seq > this.max) this.max = seq;
    if (seq === this.contig + 1) {
      this.contig = seq;
      while (this.extra.delete(this.contig + 1)) this.contig++;
    } else {
      this.extra.add(seq);
    }
    return late ? "out-of-order" : "ok";
  }
}

export interface SimClientOptions {
  url: string;
  protocol: Protocol;
  user: string;
  rooms: string[];
  headers: Record<string, string>;
  stats: SimStats;
}

export class SimClient {
  readonly views = new Map<string, RoomView>();
  /** Sends not yet acknowledged or refused. */
  inFlight = 0;
  /** The stream is open and in its rooms. */
  live = false;
  /** Per changed message (room, seq), the highest version this client saw. */
  readonly versions = new Map<string, bigint>();
  /** This client's acknowledged messages in its first room, not deleted. */
  private readonly mine: number[] = [];
  /** The reactions this client has ("seq emoji"). */
  private readonly reacted = new Set<string>();
  private conn: Connection | undefined;
  private stream: ChatStream | undefined;
  private ended: Promise<void> | undefined;
  private counter = 0;
  private readonly settledWaiters = new Set<() => void>();

  constructor(readonly opts: SimClientOptions) {}

  get user(): string {
    return this.opts.user;
  }

  /** Opens the stream and joins the rooms; resolves once every join is confirmed. */
  async open(timeoutMs = 15_000): Promise<void> {
    const { stats } = this.opts;
    this.conn = new Connection({ url: this.opts.url, protocol: this.opts.protocol, headers: this.opts.headers });
    const stream = (this.stream = this.conn.openChat());
    let joinedAll!: () => void;
    let failed!: (err: unknown) => void;
    const joined = new Promise<void>((resolve, reject) => {
      joinedAll = resolve;
      failed = reject;
    });
    const waiting = new Set(this.opts.rooms);
    this.ended = (async () => {
      try {
        for await (const e of stream.events) {
          if (e.kind.case === "ready") {
            for (const room of this.opts.rooms) stream.send({ kind: { case: "join", value: { room } } });
          } else if (e.kind.case === "joined" && waiting.delete(e.kind.value.room)) {
            this.views.set(e.kind.value.room, new RoomView(Number(e.kind.value.lastSeq)));
            if (waiting.size === 0) joinedAll();
          } else {
            this.onEvent(e);
          }
        }
        if (waiting.size > 0) failed(new Error("the stream ended before the joins were confirmed"));
      } catch (err) {
        const e = ConnectError.from(err);
        if (this.live) stats.error(codeName(e.code));
        failed(e);
      } finally {
        // From now on this client cannot receive anything: later messages are not expected of it.
        for (const [room, view] of this.views) view.until = stats.maxAcked.get(room) ?? 0;
        this.live = false;
        this.inFlight = 0;
        this.notify();
      }
    })();
    const timer = setTimeout(() => failed(new Error(`no ready and joined within ${timeoutMs} ms`)), timeoutMs);
    try {
      await joined;
      this.live = true;
      stats.sessions++;
    } catch (err) {
      stats.sessionsFailed++;
      stats.error(err instanceof ConnectError ? codeName(err.code) : "timeout");
      this.stream.abort();
      this.conn.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private onEvent(e: ChatEvent): void {
    const { stats } = this.opts;
    const k = e.kind;
    switch (k.case) {
      case "message": {
        const m = k.value;
        const view = this.views.get(m.room);
        if (!view) return;
        const verdict = view.receive(Number(m.seq));
        if (verdict === "duplicate") {
          stats.duplicates++;
          return;
        }
        if (verdict === "out-of-order") stats.outOfOrder++;
        stats.delivered++;
        const now = m.update?.message;
        if (now) {
          const key = `${m.room}\0${now.seq}`;
          if (now.version > (this.versions.get(key) ?? 0n)) this.versions.set(key, now.version);
        }
        const at = stats.sentAt.get(m.clientMsgId);
        if (at !== undefined) stats.latencies.push(performance.now() - at);
        return;
      }
      case "ack": {
        const m = k.value.message;
        const op = stats.ops.get(k.value.clientMsgId);
        stats.ops.delete(k.value.clientMsgId);
        if (m) stats.ack(m.room, Number(m.seq));
        else {
          stats.acknowledged++;
          stats.noops++;
        }
        if (m && op === "send") {
          let list = stats.messages.get(m.room);
          if (!list) stats.messages.set(m.room, (list = []));
          list.push(Number(m.seq));
          if (m.room === this.opts.rooms[0]) this.mine.push(Number(m.seq));
        }
        this.inFlight--;
        this.notify();
        return;
      }
      case "error": {
        const op = stats.ops.get(k.value.clientMsgId);
        stats.ops.delete(k.value.clientMsgId);
        if (op && op !== "send" && k.value.code === "failed_precondition") stats.raced++;
        else stats.error(k.value.code);
        if (k.value.clientMsgId) {
          this.inFlight--;
          this.notify();
        }
        return;
      }
    }
  }

  private notify(): void {
    if (this.inFlight > 0) return;
    for (const w of this.settledWaiters) w();
    this.settledWaiters.clear();
  }

  /** Sends `text` to `room` (the first room by default) with a fresh client_msg_id. */
  send(text: string, room = this.opts.rooms[0]): void {
    const clientMsgId = this.start("send");
    if (clientMsgId) this.stream!.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text, clientMsgId } } });
  }

  /**
   * A change in the first room: an edit of this client's newest message (4 in 10), a reaction
   * toggled on any message there (5 in 10), or a delete of one of its own (1 in 10); a send when
   * there is nothing to change yet.
   */
  change(text: string): void {
    const { stats } = this.opts;
    const room = this.opts.rooms[0];
    const roll = Math.random();
    const alive = (seq: number) => !stats.deleted.has(`${room}\0${seq}`);
    const own = this.mine.filter(alive);
    if (roll < 0.4 && own.length > 0) {
      const seq = BigInt(own.at(-1)!);
      const clientMsgId = this.start("edit");
      if (clientMsgId) this.stream!.send({ kind: { case: "edit", value: { room, seq, text: `${text} (edited)`, clientMsgId } } });
      return;
    }
    if (roll >= 0.9 && own.length > 0) {
      const seq = own[Math.floor(Math.random() * own.length)];
      // Marked at once, so that the others stop choosing it (a change already on its way may still race it).
      stats.deleted.add(`${room}\0${seq}`);
      const clientMsgId = this.start("delete");
      if (clientMsgId) this.stream!.send({ kind: { case: "delete", value: { room, seq: BigInt(seq), clientMsgId } } });
      return;
    }
    const any = (stats.messages.get(room) ?? []).filter(alive);
    if (any.length === 0) return this.send(text);
    const seq = any[Math.floor(Math.random() * any.length)];
    const emoji = QUICK_REACTIONS[Math.floor(Math.random() * QUICK_REACTIONS.length)];
    const key = `${seq} ${emoji}`;
    const remove = this.reacted.has(key);
    if (remove) this.reacted.delete(key);
    else this.reacted.add(key);
    const clientMsgId = this.start("react");
    if (clientMsgId) this.stream!.send({ kind: { case: "react", value: { room, seq: BigInt(seq), emoji, remove, clientMsgId } } });
  }

  /** Counts a request about to go: its client_msg_id, or undefined when the stream is not up. */
  private start(op: Op): string | undefined {
    if (!this.live || !this.stream) return undefined;
    const { stats } = this.opts;
    const clientMsgId = `${this.opts.user}-${++this.counter}`;
    stats.sentAt.set(clientMsgId, performance.now());
    stats.ops.set(clientMsgId, op);
    stats.sent++;
    if (op !== "send") stats.changes[op]++;
    this.inFlight++;
    return clientMsgId;
  }

  /** Resolves when every send so far is acknowledged or refused (or the stream is gone). */
  acked(): Promise<void> {
    if (this.inFlight <= 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.add(resolve));
  }

  /** True when this client has received every acknowledged message of its rooms. */
  caughtUp(): boolean {
    for (const [room, view] of this.views) if (view.contig < (this.opts.stats.maxAcked.get(room) ?? 0)) return false;
    return true;
  }

  /** Acknowledged messages of this client's rooms, sent after it joined, that it never received. */
  lost(): number {
    let n = 0;
    for (const [room, view] of this.views) {
      for (const seq of this.opts.stats.ackedSeqs.get(room) ?? []) if (view.expects(seq) && !view.has(seq)) n++;
    }
    return n;
  }

  /** How many deliveries this client should have had: the acknowledged messages after it joined. */
  expected(): number {
    let n = 0;
    for (const [room, view] of this.views) for (const seq of this.opts.stats.ackedSeqs.get(room) ?? []) if (view.expects(seq)) n++;
    return n;
  }

  /** Half-closes the stream and waits (briefly) for the server to end it. */
  async close(): Promise<void> {
    if (!this.stream) return;
    this.live = false;
    this.stream.close();
    const ended = await Promise.race([this.ended?.then(() => true), Bun.sleep(3000).then(() => false)]);
    if (!ended) this.stream.abort();
    this.conn?.close();
    this.stream = undefined;
  }
}
