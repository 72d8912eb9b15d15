// A session is one open stream of one user: its rooms and its bounded outbound queue. The queue is
// what keeps memory bounded whatever a client does: a consumer that falls `limit` events behind is
// ended with ResourceExhausted and resumes with since_seq.
//
// Tens of thousands of sessions sit idle on one small machine, so a session allocates little: no
// closure of its own, its maps and promises only once something needs them.
import { ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { RoomFeed } from "./room-feed.ts";
import { fellBehind } from "./advice.ts";

/** What the core hears from all of its sessions: one object shared by all, not closures per session. */
export interface SessionHooks {
  /** An event was handed to the transport. */
  written(s: Session, event: ChatEvent): void;
  /** The session ended, whoever ended it. */
  ended(s: Session, error: ConnectError | undefined): void;
}

/** The transport writing a session: told when there are events to take(), or the session ended. */
export interface SessionSink {
  readable(): void;
}

export class Session {
  readonly feeds = new Map<string, RoomFeed>();
  lastPushAt = Date.now();
  /** When the credential the stream was opened with expires (ms since the epoch): the core ends it then. */
  expiresAtMs: number | undefined;
  /** A Subscribe stream: its rooms are the ones it was opened with, and it ends when it has none left. */
  fixedRooms = false;
  /** Opened with a server-wide admin's token (auth.ts ADMIN_CLAIM): what the stream's requests may do. */
  admin = false;
  private typing: Map<string, number> | undefined;
  private queue: ChatEvent[] = [];
  private behind = false;
  private sink: SessionSink | undefined;
  private roomWaiters: { need: number; resolve: () => void }[] | undefined;
  private isEnded = false;
  private endError: ConnectError | undefined;
  private endedPromise: Promise<ConnectError | undefined> | undefined;
  private resolveEnded: ((error: ConnectError | undefined) => void) | undefined;

  constructor(
    readonly id: string,
    readonly user: string,
    readonly protocol: string,
    readonly limit: number,
    private readonly hooks?: SessionHooks,
  ) {}

  get closed(): boolean {
    return this.isEnded;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Last typing notice forwarded per room, for throttling. */
  get typingAt(): Map<string, number> {
    return (this.typing ??= new Map());
  }

  /** Forgets a room's typing time, without creating the map for a session that never typed. */
  forgetTyping(room: string): void {
    this.typing?.delete(room);
  }

  /** Settles once the session ends, whoever ends it, with the error it ends with. */
  get ended(): Promise<ConnectError | undefined> {
    return (this.endedPromise ??= this.isEnded ? Promise.resolve(this.endError) : new Promise((resolve) => (this.resolveEnded = resolve)));
  }

  /** Queues an event; a full queue ends the session (the slow-consumer rule). */
  push(event: ChatEvent): boolean {
    if (this.isEnded) return false;
    if (this.pending >= this.limit) {
      this.behind = true;
      this.end(fellBehind(this.limit), true);
      return false;
    }
    this.queue.push(event);
    this.lastPushAt = Date.now();
    this.sink?.readable();
    return true;
  }

  /** Resolves once `n` more events fit in the queue, or the session ended. */
  waitForRoom(n: number): Promise<void> {
    if (this.isEnded || this.pending + n <= this.limit) return Promise.resolve();
    return new Promise((resolve) => (this.roomWaiters ??= []).push({ need: n, resolve }));
  }

  /**
   * Ends the session. Queued events are still written unless `discard`; then the stream ends with
   * `error`, or OK without one.
   */
  end(error?: ConnectError, discard = false): void {
    if (this.isEnded) return;
    this.isEnded = true;
    this.endError = error;
    if (discard) this.queue = [];
    for (const w of this.roomWaiters?.splice(0) ?? []) w.resolve();
    this.hooks?.ended(this, error);
    this.resolveEnded?.(error);
    this.sink?.readable();
  }

  get error(): ConnectError | undefined {
    return this.endError;
  }

  /** Whether the session ended because its reader fell a whole queue behind. */
  get fellBehind(): boolean {
    return this.behind;
  }

  /**
   * Sets the transport that writes this session: it hears whenever events are queued or the
   * session ends, and comes back to take() them. One that writes in batches schedules its write.
   */
  attach(sink: SessionSink): void {
    this.sink = sink;
  }

  /** Hands everything queued to the transport, in order; none of it counts as pending any more. */
  take(): ChatEvent[] {
    if (this.queue.length === 0) return [];
    const out = this.queue;
    this.queue = [];
    this.release();
    if (this.hooks) for (const event of out) this.hooks.written(this, event);
    return out;
  }

  private release(): void {
    if (!this.roomWaiters?.length) return;
    this.roomWaiters = this.roomWaiters.filter((w) => {
      if (this.pending + w.need > this.limit) return true;
      w.resolve();
      return false;
    });
  }
}
