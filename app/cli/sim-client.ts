// One simulated user of `edgechat sim`, and the bookkeeping they all share: what was sent and
// acknowledged, what each client received, and whether every client saw every room's messages
// exactly once and in order.
import { ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
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
        const at = stats.sentAt.get(m.clientMsgId);
        if (at !== undefined) stats.latencies.push(performance.now() - at);
        return;
      }
      case "ack": {
        const m = k.value.message;
        if (m) stats.ack(m.room, Number(m.seq));
        this.inFlight--;
        this.notify();
        return;
      }
      case "error": {
        stats.error(k.value.code);
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
    if (!this.live || !this.stream) return;
    const clientMsgId = `${this.opts.user}-${++this.counter}`;
    this.opts.stats.sentAt.set(clientMsgId, performance.now());
    this.opts.stats.sent++;
    this.inFlight++;
    this.stream.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text, clientMsgId } } });
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
