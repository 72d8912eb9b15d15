// A session is one open stream of one user: its rooms and its bounded outbound queue. The queue is
// what keeps memory bounded whatever a client does: a consumer that falls `limit` events behind is
// ended with ResourceExhausted and resumes with since_seq.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { RoomFeed } from "./room-feed.ts";

export class Session {
  readonly feeds = new Map<string, RoomFeed>();
  /** Last typing notice forwarded per room, for throttling. */
  readonly typingAt = new Map<string, number>();
  lastPushAt = Date.now();
  private queue: ChatEvent[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private roomWaiters: { need: number; resolve: () => void }[] = [];
  private isEnded = false;
  private endError: ConnectError | undefined;
  private resolveEnded!: (error: ConnectError | undefined) => void;
  /** Settles once the session ends, whoever ends it, with the error it ends with. */
  readonly ended = new Promise<ConnectError | undefined>((resolve) => (this.resolveEnded = resolve));

  constructor(
    readonly id: string,
    readonly user: string,
    readonly protocol: string,
    readonly limit: number,
    /** Called as each event is handed to the transport. */
    private readonly onWrite?: (event: ChatEvent) => void,
  ) {}

  get closed(): boolean {
    return this.isEnded;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Queues an event; a full queue ends the session (the slow-consumer rule). */
  push(event: ChatEvent): boolean {
    if (this.isEnded) return false;
    if (this.pending >= this.limit) {
      this.end(
        new ConnectError(
          `this stream fell ${this.limit} events behind and was closed; reconnect and resume with since_seq`,
          Code.ResourceExhausted,
        ),
        true,
      );
      return false;
    }
    this.queue.push(event);
    this.lastPushAt = Date.now();
    this.wake?.();
    return true;
  }

  /** Resolves once `n` more events fit in the queue, or the session ended. */
  waitForRoom(n: number): Promise<void> {
    if (this.isEnded || this.pending + n <= this.limit) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ need: n, resolve }));
  }

  /**
   * Ends the session. Queued events are still written unless `discard`; then the stream ends with
   * `error`, or OK without one.
   */
  end(error?: ConnectError, discard = false): void {
    if (this.isEnded) return;
    this.isEnded = true;
    this.endError = error;
    if (discard) {
      this.queue = [];
      this.head = 0;
    }
    this.wake?.();
    for (const w of this.roomWaiters.splice(0)) w.resolve();
    this.resolveEnded(error);
  }

  get error(): ConnectError | undefined {
    return this.endError;
  }

  /** The outbound stream, for the transport to write. */
  async *events(): AsyncGenerator<ChatEvent> {
    for (;;) {
      if (this.head < this.queue.length) {
        const event = this.queue[this.head++];
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.release();
        this.onWrite?.(event);
        yield event;
        continue;
      }
      if (this.isEnded) {
        if (this.endError) throw this.endError;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  private release(): void {
    if (this.roomWaiters.length === 0) return;
    this.roomWaiters = this.roomWaiters.filter((w) => {
      if (this.pending + w.need > this.limit) return true;
      w.resolve();
      return false;
    });
  }
}
