// The chat client's connection to the server, kept alive: it reconnects with backoff after a
// network drop or a server restart, rejoins every room with since_seq = the last seq it has shown,
// and resends the messages that were not acknowledged (same client_msg_id, so the server stores
// them once). It shows each message at most once: a message whose seq is not above the room's last
// shown seq is dropped.
import { Code, ConnectError } from "@connectrpc/connect";
import { dmParticipants, dmRoom } from "../rules/names.ts";
import type { ChatEvent, Message, OnlineUser, Presence, RoomInfo } from "../gen/chat/v1/chat_pb.ts";
import { Connection, type ChatRequestInit, type ChatStream, type Protocol } from "./connection.ts";

export interface SessionOutput {
  /** A message of a room, shown once, in seq order per room. */
  message(m: Message): void;
  presence(p: Presence): void;
  typing(room: string, user: string): void;
  /** A line about the session itself: joined, reconnecting, ... */
  info(text: string): void;
  /** Something went wrong: an error event, a failed call. */
  error(text: string): void;
}

export interface SessionOptions {
  url: string;
  protocol: Protocol;
  headers: Record<string, string>;
  out: SessionOutput;
  /** How many messages to show when entering a room. */
  historyOnJoin?: number;
  /** First reconnect delay; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

type Target = { room: string } | { toUser: string };

export { dmRoom };

/** The other user of a direct-message room, or undefined for a public room. */
export function dmPartner(room: string, me: string): string | undefined {
  const pair = dmParticipants(room);
  if (!pair) return undefined;
  return pair[0] === me ? pair[1] : pair[0];
}

// Codes that a retry cannot fix: the credentials are wrong.
const FATAL = new Set([Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument]);

// Codes that, without a join waiting for its answer, can only be a refused rejoin: a typing notice
// is never refused for them in a room the client is in.
const REJOIN_ERRORS = new Set(["invalid_argument", "permission_denied"]);

export class ChatSession {
  user = "";
  region = "";
  /** Rooms this client is in, with the last seq shown (undefined: nothing shown yet). */
  readonly rooms = new Map<string, { lastSeq: bigint | undefined }>();
  /** Sends without an ack yet, by client_msg_id; resent after a reconnect. */
  readonly pending = new Map<string, ChatRequestInit>();
  /** Resolves at the first ready event; rejects if the credentials are refused. */
  readonly ready: Promise<void>;
  /** Resolves when the session is over (close(), or a fatal error). */
  readonly finished: Promise<void>;
  fatal: ConnectError | undefined;
  /** How many sends and joins the server refused: a script's exit code says whether any was. */
  refused = 0;

  private conn: Connection | undefined;
  private stream: ChatStream | undefined;
  private connected = false;
  private closing = false;
  private wake: (() => void) | undefined;
  private readonly idPrefix = `cli-${crypto.randomUUID().slice(0, 8)}`;
  private counter = 0;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;
  private acked: (() => void) | undefined;
  /** enter() calls waiting for the server's answer to their join, by room. */
  private readonly joining = new Map<string, (ok: boolean) => void>();

  constructor(private readonly opts: SessionOptions) {
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});
    this.finished = this.run();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The current connection, for unary calls (the room RPCs); throws when there is none. */
  client() {
    if (!this.conn) throw new ConnectError("not connected", Code.Unavailable);
    return { client: this.conn.client, call: this.conn.call() };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let everReady = false;
    while (!this.closing) {
      const conn = new Connection({ url: this.opts.url, protocol: this.opts.protocol, headers: this.opts.headers, pingIntervalMs: 10_000 });
      const stream = conn.openChat();
      this.conn = conn;
      this.stream = stream;
      let failure: unknown;
      try {
        for await (const e of stream.events) {
          if (e.kind.case === "ready") {
            attempt = 0;
            this.onReady(e.kind.value.user, e.kind.value.region, everReady);
            everReady = true;
          } else {
            this.onEvent(e);
          }
        }
      } catch (err) {
        failure = err;
      }
      this.stream = undefined;
      if (this.closing) {
        this.settleJoins(false);
        this.connected = false;
        break;
      }
      const err = failure === undefined ? undefined : ConnectError.from(failure);
      if (err && FATAL.has(err.code)) {
        this.connected = false;
        this.fatal = err;
        this.readyReject(err);
        this.opts.out.error(`the server refused the session: ${err.rawMessage}`);
        this.settleJoins(false);
        conn.close();
        break;
      }
      const base = Math.min(this.opts.maxBackoffMs ?? 5000, (this.opts.backoffMs ?? 250) * 2 ** attempt);
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      attempt++;
      const why = err ? err.rawMessage : "the server ended the stream";
      const what = this.connected ? "connection lost" : `cannot reach ${this.opts.url}`;
      this.connected = false;
      this.opts.out.info(`${what} (${why}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
      conn.close();
    }
  }

  private onReady(user: string, region: string, again: boolean): void {
    this.user = user;
    this.region = region;
    this.connected = true;
    if (again) this.opts.out.info(`reconnected as ${user} (${region})`);
    // Back into every room, from the last message shown; then the sends that were not acknowledged.
    for (const [room, st] of this.rooms) {
      if (st.lastSeq !== undefined) this.stream?.send({ kind: { case: "join", value: { room, sinceSeq: st.lastSeq } } });
      else void this.enter(room, false);
    }
    for (const send of this.pending.values()) this.stream?.send(send);
    this.readyResolve();
  }

  private onEvent(e: ChatEvent): void {
    const k = e.kind;
    switch (k.case) {
      case "message":
        return this.show(k.value);
      case "joined": {
        // A direct message can join this stream to its room without asking.
        if (!this.rooms.has(k.value.room)) this.rooms.set(k.value.room, { lastSeq: undefined });
        this.settleJoin(k.value.room, true);
        return;
      }
      case "presence":
        return this.opts.out.presence(k.value);
      case "typing":
        return this.opts.out.typing(k.value.room, k.value.user);
      case "ack":
        this.pending.delete(k.value.clientMsgId);
        if (this.pending.size === 0) this.acked?.();
        return;
      case "error": {
        const v = k.value;
        if (v.clientMsgId) {
          const req = this.pending.get(v.clientMsgId);
          this.pending.delete(v.clientMsgId);
          if (this.pending.size === 0) this.acked?.();
          const text = req?.kind?.case === "send" ? req.kind.value.text : "";
          this.refused++;
          this.opts.out.error(`not sent${text ? ` "${text}"` : ""}: ${v.code}: ${v.text}`);
        } else {
          // A join that failed: the room is not ours. Typing and leave errors name the room too, so
          // an error counts as the join's only while a join waits for its answer, or when a rejoin
          // after a reconnect could not be refused for any other reason.
          if (v.room && (this.joining.has(v.room) || REJOIN_ERRORS.has(v.code)) && this.rooms.delete(v.room)) {
            this.refused++;
            this.settleJoin(v.room, false);
          }
          this.opts.out.error(`${v.code}: ${v.text}`);
        }
        return;
      }
    }
  }

  /** Shows a message unless it was shown already. */
  private show(m: Message): void {
    let st = this.rooms.get(m.room);
    if (!st) this.rooms.set(m.room, (st = { lastSeq: undefined }));
    if (st.lastSeq !== undefined && m.seq <= st.lastSeq) return;
    st.lastSeq = m.seq;
    this.opts.out.message(m);
  }

  private settleJoin(room: string, ok: boolean): void {
    this.joining.get(room)?.(ok);
    this.joining.delete(room);
  }

  private settleJoins(ok: boolean): void {
    for (const room of [...this.joining.keys()]) this.settleJoin(room, ok);
  }

  /**
   * Enters a room: shows its last messages (History), then joins with since_seq = the last one
   * shown, so that nothing is missed in between and nothing shows twice. Resolves true once the
   * server confirmed the join (or will be asked again on the next connection), false if it refused.
   */
  async enter(room: string, announce = true): Promise<boolean> {
    const known = this.rooms.get(room);
    if (known?.lastSeq !== undefined) {
      // Already in it (a direct message may have brought us there): just make sure the stream is.
      this.stream?.send({ kind: { case: "join", value: { room, sinceSeq: known.lastSeq } } });
      return true;
    }
    if (!known) this.rooms.set(room, { lastSeq: undefined });
    if (!this.connected) {
      if (announce) this.opts.out.info(`not connected: joining ${room} once the connection is back`);
      return true;
    }
    const limit = this.opts.historyOnJoin ?? 20;
    let since: bigint;
    try {
      const { client, call } = this.client();
      const page = await client.history({ room, limit }, call);
      for (const m of page.messages) this.show(m);
      const st = this.rooms.get(room);
      if (!st) return false; // left meanwhile
      since = st.lastSeq ?? page.messages.at(-1)?.seq ?? 0n;
      st.lastSeq = since;
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.Unavailable) {
        this.rooms.delete(room);
        this.refused++;
        this.opts.out.error(`cannot enter ${room}: ${e.rawMessage}`);
        return false;
      }
      return true; // the connection dropped: entered on the next ready
    }
    // The server answers the join with a Joined event, or an error event naming the room.
    const answered = new Promise<boolean>((resolve) => {
      this.joining.get(room)?.(false);
      this.joining.set(room, resolve);
    });
    this.stream?.send({ kind: { case: "join", value: { room, sinceSeq: since } } });
    const ok = await answered;
    if (ok && announce) this.opts.out.info(`joined ${room}`);
    return ok;
  }

  leave(room: string): boolean {
    if (!this.rooms.delete(room)) return false;
    this.stream?.send({ kind: { case: "leave", value: { room } } });
    return true;
  }

  /** Sends a message (a reply to `replyTo` when given); returns its client_msg_id. */
  send(target: Target, text: string, replyTo = 0n): string {
    const clientMsgId = `${this.idPrefix}-${++this.counter}`;
    const to = "room" in target ? { case: "room" as const, value: target.room } : { case: "toUser" as const, value: target.toUser };
    const req: ChatRequestInit = { kind: { case: "send", value: { target: to, text, clientMsgId, replyTo } } };
    this.pending.set(clientMsgId, req);
    if (this.connected) this.stream?.send(req);
    return clientMsgId;
  }

  typing(room: string): void {
    if (this.connected && this.rooms.has(room)) this.stream?.send({ kind: { case: "typing", value: { room } } });
  }

  async listOnline(room = ""): Promise<OnlineUser[]> {
    const { client, call } = this.client();
    return (await client.listOnline({ room }, call)).users;
  }

  /** The rooms this user can see, page after page, up to `max`. */
  async listRooms(max = 1000): Promise<RoomInfo[]> {
    const { client, call } = this.client();
    const rooms: RoomInfo[] = [];
    let pageToken = "";
    do {
      const page = await client.listRooms({ pageSize: 500, pageToken }, call);
      rooms.push(...page.rooms);
      pageToken = page.nextPageToken;
    } while (pageToken && rooms.length < max);
    return rooms.slice(0, max);
  }

  /** The user has read `room` up to `seq` (MarkRead). */
  async markRead(room: string, seq: bigint): Promise<void> {
    const { client, call } = this.client();
    await client.markRead({ room, seq }, call);
  }

  async history(room: string, limit: number): Promise<Message[]> {
    const { client, call } = this.client();
    return (await client.history({ room, limit }, call)).messages;
  }

  /** Waits (up to `ms`) for the sends in flight to be acknowledged, then ends the stream. */
  async close(ms = 5000): Promise<void> {
    if (this.pending.size > 0 && this.connected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        this.acked = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.closing = true;
    this.wake?.();
    this.stream?.close();
    const ended = await Promise.race([this.finished.then(() => true), Bun.sleep(2000).then(() => false)]);
    if (!ended) this.stream?.abort();
    this.conn?.close();
  }
}
