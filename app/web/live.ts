// The page's live feed: one Subscribe stream for the page's rooms, kept open through network
// trouble. Subscribe fixes its rooms per call, so a new room set means a new stream; the new one is
// opened before the old one is closed (make before break), so nothing is missed in between and the
// others see no presence flicker. Every stream resumes each room from the page's newest seq there,
// so a reconnect or a room change never skips a message; the page drops the seqs it already has.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { ChatEvent, ChatService } from "../gen/chat/v1/chat_pb.ts";

export type LiveStatus = { state: "connecting" } | { state: "live" } | { state: "retrying"; at: number; reason: string } | { state: "stopped" };

export interface LiveOptions {
  client: Client<typeof ChatService>;
  /** The rooms to stream, asked at every (re)connect. */
  rooms(): string[];
  /** The resume point of a room: the newest seq the page has; undefined for live messages only. */
  sinceSeq(room: string): bigint | undefined;
  onEvent(e: ChatEvent): void;
  onStatus(s: LiveStatus): void;
  /** The server refused the credentials: the feed stops for good. */
  onAuthError(err: ConnectError): void;
  /** The stream was refused or ended for a room the user may not read (any more): sort out the rooms before the retry. */
  onRefused?(err: ConnectError): Promise<void>;
  /** A stream without any event (heartbeats included) for this long is taken for dead. */
  silenceMs?: number;
}

interface Stream {
  ac: AbortController;
  /** Ended by the watchdog: a failure, not a planned close. */
  stale: boolean;
  lastEventAt: number;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;

export class Live {
  private current: Stream | undefined;
  private readonly older = new Set<Stream>();
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly watchdog: ReturnType<typeof setInterval>;
  private stopped = false;

  constructor(private readonly opts: LiveOptions) {
    const silence = opts.silenceMs ?? 70_000;
    this.watchdog = setInterval(() => {
      const s = this.current;
      if (s && Date.now() - s.lastEventAt > silence) {
        s.stale = true;
        s.ac.abort();
      }
    }, 5_000);
  }

  /** Opens a stream (again) with the current rooms, each resumed; the old one closes once it is up. */
  resubscribe(): void {
    if (!this.stopped) this.connect();
  }

  /** Skips the wait of a pending reconnect (the browser says it is back online). */
  retryNow(): void {
    if (this.retryTimer !== undefined && !this.stopped) this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    for (const s of [...this.older, ...(this.current ? [this.current] : [])]) s.ac.abort();
    this.older.clear();
    this.current = undefined;
    this.opts.onStatus({ state: "stopped" });
  }

  private connect(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.current) this.older.add(this.current);
    const s: Stream = { ac: new AbortController(), stale: false, lastEventAt: Date.now() };
    this.current = s;
    if (this.older.size === 0) this.opts.onStatus({ state: "connecting" });
    void this.run(s);
  }

  private async run(s: Stream): Promise<void> {
    const rooms = this.opts.rooms();
    const sinceSeq: Record<string, bigint> = {};
    for (const room of rooms) {
      const seq = this.opts.sinceSeq(room);
      if (seq !== undefined) sinceSeq[room] = seq;
    }
    try {
      for await (const e of this.opts.client.subscribe({ rooms, sinceSeq }, { signal: s.ac.signal })) {
        s.lastEventAt = Date.now();
        if (e.kind.case === "heartbeat") continue;
        if (e.kind.case === "ready" && s === this.current) {
          // The server joins every room before the first event, so the old streams can go now.
          for (const old of this.older) old.ac.abort();
          this.older.clear();
          this.attempt = 0;
          this.opts.onStatus({ state: "live" });
        }
        this.opts.onEvent(e);
      }
      throw new ConnectError("the server ended the stream", Code.Unavailable);
    } catch (err) {
      if (s.ac.signal.aborted && !s.stale) return;
      this.older.delete(s);
      if (s !== this.current || this.stopped) return;
      this.current = undefined;
      const ce = ConnectError.from(err);
      if (ce.code === Code.Unauthenticated) {
        this.stop();
        this.opts.onAuthError(ce);
        return;
      }
      if ((ce.code === Code.PermissionDenied || ce.code === Code.NotFound) && this.opts.onRefused) await this.opts.onRefused(ce).catch(() => undefined);
      if (this.stopped) return;
      const cap = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.attempt++);
      const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
      this.opts.onStatus({ state: "retrying", at: Date.now() + delay, reason: s.stale ? "the connection went silent" : ce.rawMessage });
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }
  }
}
