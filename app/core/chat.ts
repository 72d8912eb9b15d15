// The chat core: sessions, rooms, direct messages, presence and history, on top of an Engine.
// It knows nothing of the wire; transport/ turns RPCs into these calls.
import { Code, ConnectError } from "@connectrpc/connect";
import { UpdateKind, type ChatEvent, type ChatRequest, type Message, type RoomChange, type RoomInfo, type SendRequest } from "../gen/chat/v1/chat_pb.ts";
import type { Draft, Engine, OnlineEntry, OutboxRow, Page, RoomRecord, UpdateDraft, Updated } from "../engine/engine.ts";
import type { Limits } from "../config.ts";
import type { Logger } from "../log.ts";
import {
  ackEvent,
  asConnectError,
  errorEvent,
  heartbeatEvent,
  joinedEvent,
  messageEvent,
  pongEvent,
  readEvent,
  refreshedEvent,
  presenceEvent,
  readyEvent,
  typingEvent,
} from "./events.ts";
import { Hub, type Listener } from "./hub.ts";
import { checkText, RateLimiter } from "./limits.ts";
import { PresenceGate } from "./presence-gate.ts";
import { checkAnyRoom, checkRoomAccess, checkUserId, dmParticipants, dmRoom } from "../rules/names.ts";
import { mentions, UNREAD_CAP } from "../rules/unread.ts";
import { RoomFeed } from "./room-feed.ts";
import { noopObserver, type ChatObserver } from "./observer.ts";
import { Session, type SessionHooks } from "./session.ts";
import { drainEnd, drainRefusal, historyUnavailable } from "./advice.ts";
import { tokenExpired, type Authenticator } from "./auth.ts";
import { type Actor, checkRead, checkWrite, MAX_REASON, readRefusal, roomNotCreated } from "./room-rules.ts";
import { edit, react, remove } from "./message-updates.ts";
import { checkEmoji } from "../rules/reactions.ts";
import { entryType, eventData, type EventSink, type WebhookEvent } from "./webhook-events.ts";
import type { FilterInput, MessageFilter } from "./message-filter.ts";
import { kindProto, roleProto, Rooms } from "./rooms.ts";

export type SendTarget = { room: string } | { toUser: string };
type RateKind = "send" | "join" | "read";

export interface CoreOptions {
  engine: Engine;
  region: string;
  limits: Limits;
  log: Logger;
  heartbeatSeconds?: number;
  observer?: ChatObserver;
  /** Verifies the tokens a Chat stream refreshes in-band (without one, as in dev mode, refresh is refused). */
  auth?: Pick<Authenticator, "mode" | "identify">;
  /** EDGECHAT_OPEN_ROOMS: a room nobody created is made by first use (true, the default), or does not exist. */
  openRooms?: boolean;
  /** Where the webhooks' events go (app/webhooks/); none: no webhooks. Needs an engine with an outbox. */
  events?: EventSink;
  /** EDGECHAT_FILTER_URL: the hook every user's message and edit passes before it is stored. */
  filter?: MessageFilter;
}

/** A room listed by ListRooms, as the caller sees it: RoomInfo's fields. */
export type ListedRoom = Omit<RoomInfo, "$typeName" | "$unknown">;

const MAX_CLIENT_MSG_ID = 128;
/** How long a message waits for its webhook's list of offline members before it goes without one. */
const OFFLINE_LOOKUP_MS = 500;
const OFFLINE_CACHE_MS = 1000;
const MAX_PAGE_TOKEN = 256;
const TYPING_INTERVAL_MS = 1000;
/** How often sessions are checked for an expired token. */
const EXPIRY_CHECK_MS = 1000;

const inbox = (user: string) => "@" + user;
const notInRoom = (room: string) => new ConnectError(`join room "${room}" before typing in it`, Code.FailedPrecondition);

export class ChatCore {
  private readonly hub: Hub;
  /**
   * Per-user rates, by what they count (and the `limit` label of the refusal metric): sends; joins
   * and leaves, and Subscribe calls, each of which makes presence events for everyone in the room;
   * History, ListRooms, ListOnline and the room reads, each of which reads the store or many users'
   * presence. Room changes count as sends: each writes a history entry.
   */
  private readonly limiters: Record<RateKind, RateLimiter>;
  private readonly presence: PresenceGate;
  private readonly sessions = new Set<Session>();
  /** Each session's listener on its user's inbox (its rooms' listeners are its feeds). */
  private readonly inboxes = new WeakMap<Session, Listener>();
  /** A feed's history read failed: its session ends (one function for every feed). */
  private readonly feedFailed = (feed: RoomFeed, err: unknown) => {
    this.logFail("history read", err);
    void this.close(feed.session, historyUnavailable());
  };
  private readonly timer: ReturnType<typeof setInterval>;
  /** Ends sessions whose token expired; started by the first session that has an expiry. */
  private expiryTimer: ReturnType<typeof setInterval> | undefined;
  private readonly observer: ChatObserver;
  /** When each live message was accepted, for the delivery latency; gone with the message. */
  private readonly acceptedAt = new WeakMap<Message, number>();
  private draining = false;
  /** Rooms with owners: CreateRoom and the rest of the room RPCs. */
  readonly rooms: Rooms;
  /** A block either way hides each user's presence and typing from the other (one function for every feed). */
  private readonly hides = (viewer: string, user: string) => {
    const { access } = this.opts.engine;
    return access.blocked(viewer).has(user) || access.blocked(user).has(viewer);
  };
  private readonly stopWatching: () => void;
  /** Each room's members with no stream, as last looked up for a webhook (offlineMembers). */
  private readonly offlineCache = new Map<string, { users: string[]; at: number }>();
  /** When each user last said they type in each room without a stream (typingFor), swept by tick(). */
  private readonly typingAt = new Map<string, number>();

  constructor(private readonly opts: CoreOptions) {
    this.observer = opts.observer ?? noopObserver;
    this.hub = new Hub(opts.engine.bus, (err) => opts.log.error("listener failed", { err }));
    const l = opts.limits;
    this.limiters = {
      send: new RateLimiter(l.ratePerSecond, l.rateBurst),
      join: new RateLimiter(l.joinRatePerSecond, l.joinBurst, "joins and leaves"),
      read: new RateLimiter(l.readRatePerSecond, l.readBurst, "reads (History, ListRooms, ListOnline, GetRoom, ListMembers, MarkRead)"),
    };
    this.presence = new PresenceGate((room, user, joined, region) =>
      opts.engine.bus.publish(room, presenceEvent(room, user, joined, region)).catch((err) => this.logFail("publish presence", err)),
    );
    const beatMs = (opts.heartbeatSeconds ?? 25) * 1000;
    this.timer = setInterval(() => this.tick(beatMs), Math.min(beatMs, 5000));
    this.timer.unref?.();
    this.rooms = new Rooms({
      engine: opts.engine,
      limits: opts.limits,
      openRooms: opts.openRooms !== false,
      record: (room, from, change) => this.recordChange(room, from, change),
      deleted: (room, by) => this.emit("room.deleted", { room, by }),
      take: (kind, actor) => {
        if (!actor.server) this.takeToken(kind, actor.user, actor.protocol ?? "unknown");
      },
    });
    this.stopWatching = opts.engine.access.watch((room, now, before) => this.roomChanged(room, now, before));
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Rooms with at least one session on this instance. */
  get roomCount(): number {
    return this.hub.roomCount;
  }

  /** Shared by every session, so that a session costs no closures of its own. */
  private readonly sessionHooks: SessionHooks = {
    written: (_s, e) => this.observer.eventWritten(e, e.kind.case === "message" ? this.acceptedAt.get(e.kind.value) : undefined),
    ended: (s, err) => {
      // A session ended from inside (a slow consumer) leaves its rooms at once, not when the
      // transport gets around to it.
      if (err?.code === Code.ResourceExhausted) this.observer.slowConsumer(s.protocol);
      void this.close(s);
    },
  };

  /**
   * Opens a session: the user is online and gets its direct messages from now on. With
   * `expiresAtMs` (a token's exp) the session ends then with Unauthenticated, within a second.
   */
  async open(user: string, protocol: string, expiresAtMs?: number, admin = false): Promise<Session> {
    if (this.draining) throw drainRefusal();
    const s = new Session(crypto.randomUUID(), user, protocol, this.opts.limits.sessionQueue, this.sessionHooks);
    s.admin = admin;
    if (expiresAtMs !== undefined) {
      s.expiresAtMs = expiresAtMs;
      // One timer for all sessions, not one each: a second's precision, and nothing per idle stream.
      this.expiryTimer ??= setInterval(() => this.endExpired(), EXPIRY_CHECK_MS);
      this.expiryTimer.unref?.();
    }
    this.sessions.add(s);
    this.observer.sessionOpened(protocol);
    s.push(readyEvent(user, this.opts.region, s.id));
    try {
      const l = new InboxListener(this, s);
      this.inboxes.set(s, l);
      await this.hub.listen(inbox(user), l);
      await this.opts.engine.presence.enter("", user, s.id, this.opts.region);
    } catch (err) {
      await this.close(s);
      throw err;
    }
    return s;
  }

  /** Opens a session in `rooms`, each from its since_seq if given: what Subscribe does. */
  async subscribe(user: string, protocol: string, rooms: string[], sinceSeq: Record<string, bigint>, expiresAtMs?: number): Promise<Session> {
    for (const room of Object.keys(sinceSeq)) {
      if (!rooms.includes(room)) {
        throw new ConnectError(`since_seq names room "${room}", which is not in rooms`, Code.InvalidArgument);
      }
    }
    // One token for the call, whatever its rooms: the per-stream room limit bounds those.
    this.takeToken("join", user, protocol);
    const s = await this.open(user, protocol, expiresAtMs);
    s.fixedRooms = true;
    try {
      for (const room of rooms) await this.enter(s, room, sinceSeq[room]);
    } catch (err) {
      await this.close(s);
      throw err;
    }
    return s;
  }

  /** Ends a session: leaves its rooms (presence "left" where it was the user's last session). */
  async close(s: Session, error?: ConnectError, discard = false): Promise<void> {
    if (!this.sessions.delete(s)) return;
    this.observer.sessionClosed(s.protocol);
    s.end(error, discard);
    for (const room of [...s.feeds.keys()]) await this.detach(s, room).catch((err) => this.logFail("leave on close", err));
    const l = this.inboxes.get(s);
    if (l) this.hub.unlisten(inbox(s.user), l);
    this.inboxes.delete(s);
    const last = await this.opts.engine.presence.leave("", s.user, s.id).catch((err) => this.logFail("presence leave", err));
    // The user's last stream on this server ended; with a shared engine, the last anywhere.
    if (last) this.emit("user.offline", { user: s.user, region: this.opts.region });
  }

  /** Handles one request of a Chat stream; a failure becomes an error event, the stream goes on. */
  async handle(s: Session, req: ChatRequest): Promise<void> {
    const k = req.kind;
    try {
      switch (k.case) {
        case "join":
          return await this.join(s, k.value.room, k.value.sinceSeq);
        case "leave":
          return await this.leave(s, k.value.room);
        case "send": {
          const message = await this.sendRequest(s.user, k.value, s.protocol);
          s.push(ackEvent(k.value.clientMsgId, message));
          return;
        }
        case "edit": {
          const { room, seq, text, clientMsgId } = k.value;
          const { entry } = await this.editMessage(actorOf(s), room, seq, text, clientMsgId);
          s.push(ackEvent(clientMsgId, entry));
          return;
        }
        case "delete": {
          const { room, seq, clientMsgId } = k.value;
          const { entry } = await this.deleteMessage(actorOf(s), room, seq, clientMsgId);
          s.push(ackEvent(clientMsgId, entry));
          return;
        }
        case "react": {
          const { room, seq, emoji, remove, clientMsgId } = k.value;
          const { entry } = await this.react(actorOf(s), room, seq, emoji, !remove, clientMsgId);
          s.push(ackEvent(clientMsgId, entry));
          return;
        }
        case "read":
          // The answer is the read event that every session of the user gets, this one included.
          await this.markRead(s.user, k.value.room, k.value.seq, s.protocol);
          return;
        case "typing":
          return await this.typing(s, k.value.room);
        case "ping":
          s.push(pongEvent(k.value.nonce));
          return;
        case "refresh":
          return await this.refresh(s, k.value.token);
        default:
          throw new ConnectError("empty request: set one of join, leave, send, edit, delete, react, typing, ping, refresh or read", Code.InvalidArgument);
      }
    } catch (err) {
      const e = asConnectError(err);
      if (e.code === Code.Internal) this.logFail("request", err);
      const clientMsgId = k.case === "send" || k.case === "edit" || k.case === "delete" || k.case === "react" ? k.value.clientMsgId : "";
      const room =
        k.case === "join" || k.case === "leave" || k.case === "typing" || k.case === "read" || k.case === "edit" || k.case === "delete" || k.case === "react"
          ? k.value.room
          : "";
      s.push(errorEvent(e, clientMsgId, room));
    }
  }

  /** A session's request to join a room: counts against the user's joins and leaves. */
  async join(s: Session, room: string, sinceSeq?: bigint): Promise<void> {
    this.takeToken("join", s.user, s.protocol);
    return this.enter(s, room, sinceSeq);
  }

  /** Puts a session in a room (no rate limit: callers take the token). */
  private async enter(s: Session, roomName: string, sinceSeq?: bigint): Promise<void> {
    const room = this.roomFor(s.user, roomName, "read");
    const existing = s.feeds.get(room);
    if (existing) {
      s.push(joinedEvent(room, await this.opts.engine.history.lastSeq(room)));
      return;
    }
    if (s.feeds.size >= this.opts.limits.maxRoomsPerSession) {
      throw new ConnectError(`a session can be in at most ${this.opts.limits.maxRoomsPerSession} rooms; leave one first`, Code.ResourceExhausted);
    }
    const feed = new RoomFeed(room, s, this.opts.engine.history, this.feedFailed, this.hides);
    s.feeds.set(room, feed);
    try {
      await this.hub.listen(room, feed);
      const last = await this.opts.engine.history.lastSeq(room);
      if (s.closed || s.feeds.get(room) !== feed) return;
      s.push(joinedEvent(room, last));
      // A client that remembers more than the room holds (a wiped store) resumes from the end.
      feed.start(sinceSeq === undefined || sinceSeq > last ? last : sinceSeq);
      const first = await this.opts.engine.presence.enter(room, s.user, s.id, this.opts.region);
      if (first) this.presence.note(room, s.user, true, this.opts.region);
      // Membership is a directory entry, not a condition of the stream: a store that cannot write
      // (a full disk) must not keep anyone out of a room.
      await this.opts.engine.rooms.addMember(room, s.user).catch((err) => this.logFail("membership write", err));
    } catch (err) {
      await this.detach(s, room).catch(() => {});
      throw err;
    }
  }

  async leave(s: Session, roomName: string): Promise<void> {
    const room = checkRoomAccess(s.user, roomName);
    this.takeToken("join", s.user, s.protocol);
    if (!s.feeds.has(room)) throw new ConnectError(`you are not in room "${room}"`, Code.NotFound);
    await this.detach(s, room);
    await this.opts.engine.rooms.removeMember(room, s.user);
  }

  /** A SendRequest as every protocol receives it (Send, Chat's send, /ws). */
  sendRequest(user: string, req: SendRequest, protocol: string): Promise<Message> {
    return this.send(user, sendTarget(req.target), req.text, req.clientMsgId, protocol, req.replyTo);
  }

  /** Stores a message and publishes it; resolves once it is durable. */
  async send(user: string, target: SendTarget, text: string, clientMsgId: string, protocol = "unknown", replyTo = 0n): Promise<Message> {
    const room = targetRoom(user, target);
    this.checkRoom(user, room, "write");
    checkText(text, this.opts.limits.maxTextBytes);
    checkClientMsgId(clientMsgId);
    this.takeToken("send", user, protocol);
    const filtered = await this.filtered({ kind: "message", room, from: user, text, seq: replyTo });
    return this.post(user, room, filtered, clientMsgId, protocol, replyTo);
  }

  /**
   * A user's text through the filter hook, if there is one (after the rate limit: a client that
   * floods is refused before the hook is asked). A rewritten text keeps the limits of a send.
   */
  private async filtered(input: FilterInput): Promise<string> {
    if (!this.opts.filter) return input.text;
    const text = await this.opts.filter.check(input);
    return text === input.text ? text : checkText(text, this.opts.limits.maxTextBytes);
  }

  /**
   * A message from the server API, as any user into any room or to a user's direct messages: the
   * names, text limits, idempotency, order and delivery of a send, without the user's rules (who
   * may write where, blocks, rates), which are for users. A room nobody created must still exist
   * (EDGECHAT_OPEN_ROOMS).
   */
  async publish(from: string, target: SendTarget, text: string, clientMsgId: string, replyTo = 0n, protocol = "unknown"): Promise<Message> {
    checkUserId(from, "from");
    const room = targetRoom(from, target);
    if (!dmParticipants(room) && !this.opts.engine.access.room(room) && this.opts.openRooms === false) throw roomNotCreated(room);
    checkText(text, this.opts.limits.maxTextBytes);
    checkClientMsgId(clientMsgId);
    return this.post(from, room, text, clientMsgId, protocol, replyTo);
  }

  /** A checked message stored and published (send and publish). */
  private async post(from: string, room: string, text: string, clientMsgId: string, protocol: string, replyTo: bigint): Promise<Message> {
    if (replyTo > 0n) await this.checkReplyTarget(room, replyTo);
    return this.store({ room, from, text, clientMsgId, region: this.opts.region, replyTo }, protocol);
  }

  /**
   * Ends every stream of `user` on every server (the server API): a notice on the user's inbox,
   * which each of their sessions takes as the end, with the reason.
   */
  async disconnect(user: string, reason: string): Promise<void> {
    checkUserId(user, "user");
    if ([...reason].length > MAX_REASON) throw new ConnectError(`reason is longer than ${MAX_REASON} characters`, Code.InvalidArgument);
    const err = new ConnectError(`the server disconnected you${reason ? `: ${reason}` : ""}`, Code.PermissionDenied);
    await this.opts.engine.bus.publish(inbox(user), errorEvent(err));
  }

  /** A reply answers a message of its room that is there to read (not an entry, not deleted, not expired). */
  private async checkReplyTarget(room: string, seq: bigint): Promise<void> {
    const [target] = (await this.opts.engine.history.read(room, { afterSeq: seq - 1n, limit: 1 })).messages;
    if (target?.seq !== seq || target.change || target.update || target.deleted) {
      throw new ConnectError(`reply_to ${seq} is not a message of room "${room}"`, Code.InvalidArgument);
    }
  }

  /** Replaces the text of one of the actor's messages (the limits of a send). */
  async editMessage(actor: Actor, roomName: string, seq: bigint, text: string, clientMsgId: string): Promise<Updated> {
    const room = this.roomFor(actor, roomName, "write");
    checkText(text, this.opts.limits.maxTextBytes);
    const filteredEdit = async () => edit(actor, room, seq, actor.server ? text : await this.filtered({ kind: "edit", room, from: actor.user, text, seq }));
    return this.update(actor, room, seq, UpdateKind.EDITED, "", clientMsgId, filteredEdit);
  }

  /** Deletes a message for good (its author, or the room's owners and admins): a tombstone keeps its seq. */
  async deleteMessage(actor: Actor, roomName: string, seq: bigint, clientMsgId: string): Promise<Updated> {
    // Deleting takes reading, not writing: a muted user may still take back what they said.
    const room = this.roomFor(actor, roomName, "read");
    return this.update(actor, room, seq, UpdateKind.DELETED, "", clientMsgId, () => remove(actor, room, seq, () => this.opts.engine.access.room(room)));
  }

  /** Adds the actor's reaction to a message, or takes it back. */
  async react(actor: Actor, roomName: string, seq: bigint, emoji: string, add: boolean, clientMsgId: string): Promise<Updated> {
    const room = this.roomFor(actor, roomName, "write");
    checkEmoji(emoji);
    const kind = add ? UpdateKind.REACTION_ADDED : UpdateKind.REACTION_REMOVED;
    return this.update(actor, room, seq, kind, emoji, clientMsgId, () => react(actor, room, seq, emoji, add));
  }

  /**
   * A change to a stored message, at the send rate (each writes an entry): stored with its entry,
   * which goes out to the room like a message, with the changed message attached.
   */
  private async update(
    actor: Actor,
    room: string,
    seq: bigint,
    kind: UpdateKind,
    emoji: string,
    clientMsgId: string,
    /** The change, made once the rate allowed the call: an edit's text goes through the filter hook then. */
    prepare: () => UpdateDraft["change"] | Promise<UpdateDraft["change"]>,
  ): Promise<Updated> {
    if (seq <= 0n) throw new ConnectError("seq must name a message: 1 or more", Code.InvalidArgument);
    checkClientMsgId(clientMsgId);
    if (!actor.server) this.takeToken("send", actor.user, actor.protocol ?? "unknown");
    const change = await prepare();
    const { engine, region } = this.opts;
    const webhooks = this.opts.events && ((entry: Message, message: Message) => this.entryRows({ ...entry, update: { ...entry.update!, message } } as Message));
    const done = await engine.history.update({ room, targetSeq: seq, from: actor.user, clientMsgId, region, kind, emoji, change, webhooks });
    if (done.entry && !done.duplicate) await this.publishEntry(done.entry);
    return done;
  }

  /**
   * Records that `user` has read `room` up to `seq` (it only moves forward), and tells every
   * session of theirs, on every server, with a read event. Resolves the stored seq.
   */
  async markRead(user: string, roomName: string, seq: bigint, protocol = "unknown"): Promise<bigint> {
    const room = this.roomFor(user, roomName, "read");
    // The read rate, not the send rate: a client marking what it shows must not use up what its
    // user may say.
    this.takeToken("read", user, protocol);
    const last = await this.opts.engine.history.lastSeq(room);
    if (seq > last) throw new ConnectError(`seq ${seq} is past the newest message of room "${room}" (${last})`, Code.InvalidArgument);
    const stored = await this.opts.engine.reads.raise(user, room, seq);
    await this.opts.engine.bus.publish(inbox(user), readEvent(room, stored)).catch((err) => this.logFail("publish read state", err));
    return stored;
  }

  /** A room change (rooms.ts) as an entry in the room's history, delivered as messages are. */
  private recordChange(room: string, from: string, change: RoomChange): Promise<Message> {
    return this.store({ room, from, text: "", clientMsgId: "", region: this.opts.region, change });
  }

  /** Sends a stored entry to the room's sessions on every instance (and, in a direct conversation, to its two users' inboxes). */
  private async publishEntry(message: Message): Promise<readonly [string, string] | undefined> {
    const { engine } = this.opts;
    const event = messageEvent(message);
    await engine.bus.publish(message.room, event).catch((err) => this.logFail("publish", err));
    const pair = dmParticipants(message.room);
    if (pair) for (const u of pair) await engine.bus.publish(inbox(u), event).catch((err) => this.logFail("publish", err));
    return pair;
  }

  /** Stores an entry and publishes it; resolves once it is durable. A message (with the protocol it came by) is counted. */
  private async store(draft: Draft, protocol?: string): Promise<Message> {
    const { engine } = this.opts;
    const room = draft.room;
    if (this.opts.events) {
      const offline = !draft.change && this.opts.events.wants("message.created") ? await this.offlineMembers(room) : [];
      draft.webhooks = (stored) => this.entryRows(stored, offline);
    }
    const { message, duplicate } = await engine.history.append(draft);
    if (duplicate) return message;
    if (protocol !== undefined) {
      this.acceptedAt.set(message, performance.now());
      this.observer.messageAccepted(protocol);
    }
    const pair = await this.publishEntry(message);
    // The room exists from its first message on: its members are the two users of a direct
    // conversation, or whoever had joined the room while it was empty (nothing was stored then).
    if (message.seq === 1n) {
      const members = pair ?? (await engine.presence.online(room)).map((e) => e.user);
      for (const u of members) await engine.rooms.addMember(room, u).catch((err) => this.logFail("membership write", err));
    }
    return message;
  }

  /** The webhook deliveries of an entry, if it makes an event (webhook-events.ts). */
  private entryRows(m: Message, offline?: string[] | null): OutboxRow[] {
    const { events } = this.opts;
    const type = entryType(m);
    // Most servers have no endpoint: an entry then costs a type check, not its event's JSON.
    if (!events || !type || !events.wants(type)) return [];
    return events.rows(type, eventData(type, m, offline));
  }

  /** An event that no entry records (a room deleted, a user gone offline), into the outbox on its own. */
  private emit(type: WebhookEvent, data: Record<string, unknown>): void {
    const { events, engine } = this.opts;
    if (!events?.wants(type) || !engine.outbox) return;
    void engine.outbox.add(events.rows(type, data)).catch((err) => this.logFail(`webhook ${type}`, err));
  }

  /**
   * The room's members with no stream in it now, anywhere: a direct conversation's two users; a
   * room's who joined it, and who has a role in it (added, or its owners).
   */
  private async offlineMembers(room: string): Promise<string[] | null> {
    // Looked up at most once a second per room: a busy room's messages share it (a second's staleness
    // in a hint for push notifications), and a send costs no listing of members and presence.
    const cached = this.offlineCache.get(room);
    if (cached && Date.now() - cached.at < OFFLINE_CACHE_MS) return cached.users;
    const users = await this.lookUpOffline(room);
    if (this.offlineCache.size >= 10_000) this.offlineCache.clear();
    if (users !== null) this.offlineCache.set(room, { users, at: Date.now() });
    return users;
  }

  private async lookUpOffline(room: string): Promise<string[] | null> {
    const { engine } = this.opts;
    const pair = dmParticipants(room);
    const roles = pair ? [] : [...(engine.access.room(room)?.roles.keys() ?? [])];
    const look = async () => {
      const members = pair ?? [...new Set([...(await engine.rooms.members(room)), ...roles])].sort();
      const online = new Set((await engine.presence.online(room)).map((e) => e.user));
      return members.filter((u) => !online.has(u));
    };
    // A hint for push notifications: never worth holding a message up for (a store failing over).
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), OFFLINE_LOOKUP_MS).unref?.());
    const found = await Promise.race([look().catch(() => null), timeout]);
    if (found === null) this.opts.log.warn("webhook: the room's offline members are unknown", { room });
    return found;
  }

  async typing(s: Session, roomName: string): Promise<void> {
    const room = this.roomFor(s.user, roomName, "write");
    if (!s.feeds.has(room)) throw notInRoom(room);
    const now = Date.now();
    // Typing is a hint: extra notices within a second are dropped, not refused.
    if (now - (s.typingAt.get(room) ?? 0) < TYPING_INTERVAL_MS) return;
    s.typingAt.set(room, now);
    await this.opts.engine.bus.publish(room, typingEvent(room, s.user));
  }

  /**
   * A typing notice from a user without a stream to send it on (the web page's POST /typing): the
   * same rules as on a stream, and the user must have a stream in the room on some server.
   */
  async typingFor(user: string, roomName: string): Promise<void> {
    const room = this.roomFor(user, roomName, "write");
    const key = `${user}\n${room}`;
    const now = Date.now();
    if (now - (this.typingAt.get(key) ?? 0) < TYPING_INTERVAL_MS) return;
    if (!(await this.isOnline(user, room))) throw notInRoom(room);
    this.typingAt.set(key, now);
    await this.opts.engine.bus.publish(room, typingEvent(room, user));
  }

  /**
   * A page of a room: after `afterSeq` (0: from the start) if set, else the newest before `beforeSeq`
   * (0: none). For a user, or for the server API (an Actor with `server`), which may read any room.
   */
  async history(who: string | Actor, roomName: string, beforeSeq: bigint, afterSeq: bigint | undefined, limit: number, protocol = "unknown"): Promise<Page> {
    const user = userOf(who);
    const room = this.roomFor(who, roomName, "read");
    if (limit > 500) throw new ConnectError("limit must be at most 500", Code.InvalidArgument);
    if (user !== undefined) this.takeToken("read", user, protocol);
    const n = limit === 0 ? 50 : limit;
    return this.opts.engine.history.read(room, {
      afterSeq,
      beforeSeq: beforeSeq > 0n ? beforeSeq : undefined,
      limit: n,
    });
  }

  /** A page of the rooms `user` can see, by name after `pageToken` (the previous page's last). */
  async listRooms(user: string, pageSize = 0, pageToken = "", protocol = "unknown"): Promise<{ rooms: ListedRoom[]; nextPageToken: string }> {
    if (pageSize > 500) throw new ConnectError("page_size must be at most 500", Code.InvalidArgument);
    if (pageToken.length > MAX_PAGE_TOKEN) throw new ConnectError("page_token is not one this server gave out", Code.InvalidArgument);
    this.takeToken("read", user, protocol);
    const { engine } = this.opts;
    const page = await engine.rooms.list(user, pageToken, pageSize === 0 ? 100 : pageSize);
    // A private room is left out for those who may not read it: a page may come out shorter than
    // asked, and next_page_token still goes on from its last name.
    const visible = page.rooms.flatMap((r) => {
      const record = dmParticipants(r.name) ? undefined : engine.access.room(r.name);
      if (record?.kind === "private" && readRefusal(record, user)) return [];
      return [{ ...r, kind: kindProto(r.name, record), title: record?.title ?? "", topic: record?.topic ?? "", yourRole: roleProto(record?.roles.get(user)) }];
    });
    const reads = await engine.reads.get(
      user,
      visible.map((r) => r.name),
    );
    const rooms = await Promise.all(
      visible.map(async (r) => {
        const lastReadSeq = reads.get(r.name) ?? 0n;
        // Unread is counted where the caller reads: rooms they have marked read once, and their
        // direct messages. A public room they never opened is not news to them (and costs no reads).
        const counted = reads.has(r.name) || dmParticipants(r.name) !== undefined;
        const unread = counted ? await this.unread(user, r.name, r.lastSeq, lastReadSeq) : { unread: 0, unreadMentions: 0 };
        return { ...r, online: (await engine.presence.online(r.name)).length, lastReadSeq, ...unread };
      }),
    );
    return { rooms, nextPageToken: page.next };
  }

  /**
   * Messages from others after `lastRead`, and those that mention `user`: read from the newest
   * back, at most UNREAD_CAP of them, so that a long-unread room costs no more than a short one.
   */
  private async unread(user: string, room: string, lastSeq: bigint, lastRead: bigint): Promise<{ unread: number; unreadMentions: number }> {
    if (lastSeq <= lastRead) return { unread: 0, unreadMentions: 0 };
    const newer = lastSeq - lastRead;
    const page = await this.opts.engine.history.read(room, { beforeSeq: lastSeq + 1n, limit: newer < UNREAD_CAP ? Number(newer) : UNREAD_CAP });
    let unread = 0;
    let unreadMentions = 0;
    for (const m of page.messages) {
      if (m.seq <= lastRead || m.change || m.update || m.deleted || m.from === user) continue;
      unread++;
      if (mentions(m.text, user)) unreadMentions++;
    }
    return { unread, unreadMentions };
  }

  /** Who is online (in `room`, or anywhere), as a user may see it, or all of it for the server API (an Actor with `server`). */
  async listOnline(who: string | Actor, room: string, protocol = "unknown"): Promise<OnlineEntry[]> {
    const user = userOf(who);
    if (room) this.roomFor(who, room, "read");
    if (user !== undefined) this.takeToken("read", user, protocol);
    const entries = (await this.opts.engine.presence.online(room)).filter((e) => user === undefined || !this.hides(user, e.user));
    return entries.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  }

  /**
   * A room name checked (rules/names.ts) and the caller's right to read or write it (checkRoom);
   * the server API (an Actor with `server`) may use any room.
   */
  private roomFor(who: string | Actor, roomName: string, need: "read" | "write"): string {
    const user = userOf(who);
    if (user === undefined) return checkAnyRoom(roomName);
    const room = checkRoomAccess(user, roomName);
    this.checkRoom(user, room, need);
    return room;
  }

  /**
   * Whether `user` may read (or write) `room` by its record (room-rules.ts), and whether a room
   * nobody created exists at all (EDGECHAT_OPEN_ROOMS). A direct message to a user who blocked the
   * sender is refused without saying so.
   */
  private checkRoom(user: string, room: string, need: "read" | "write"): void {
    const { access } = this.opts.engine;
    const pair = dmParticipants(room);
    if (pair) {
      const other = pair[0] === user ? pair[1] : pair[0];
      if (need === "write" && access.blocked(other).has(user)) {
        throw new ConnectError(`you cannot send direct messages to "${other}"`, Code.PermissionDenied);
      }
      return;
    }
    const record = access.room(room);
    if (!record && this.opts.openRooms === false) throw roomNotCreated(room);
    if (need === "write") checkWrite(record, user);
    else checkRead(record, user);
  }

  /**
   * A room's record changed (here or in another region): sessions here that may no longer read
   * it, or whose user was removed from it, leave it with the reason; a Subscribe stream left
   * without rooms ends with it.
   */
  private roomChanged(room: string, now: RoomRecord | undefined, before: RoomRecord | undefined): void {
    for (const s of this.sessions) {
      if (!s.feeds.has(room)) continue;
      const why = !now
        ? new ConnectError(`room "${room}" was deleted`, Code.NotFound)
        : (readRefusal(now, s.user) ??
          (before?.roles.has(s.user) && !now.roles.has(s.user) ? new ConnectError(`you were removed from room "${room}"`, Code.PermissionDenied) : undefined));
      if (!why) continue;
      void this.detach(s, room)
        .then(() => {
          if (s.fixedRooms && s.feeds.size === 0) return this.close(s, why);
          s.push(errorEvent(why, "", room));
        })
        .catch((err) => this.logFail("leaving a room on a change", err));
    }
  }

  /**
   * Whether `user` has a session in `room` on any instance (no rate limit: not a client's query),
   * as `viewer` may know it: not when a block between them hides each one's presence.
   */
  async isOnline(user: string, room: string, viewer?: string): Promise<boolean> {
    if (viewer !== undefined && this.hides(viewer, user)) return false;
    return (await this.opts.engine.presence.online(room)).some((e) => e.user === user);
  }

  /** Refuses new sessions and ends every open one with Unavailable, so clients go elsewhere. */
  async drain(): Promise<void> {
    this.draining = true;
    this.stopWatching();
    clearInterval(this.timer);
    clearInterval(this.expiryTimer);
    this.presence.close();
    const err = drainEnd();
    await Promise.all([...this.sessions].map((s) => this.close(s, err)));
  }

  /** Removes a session from a room: stops its feed and listener, records presence. */
  private async detach(s: Session, room: string): Promise<void> {
    const feed = s.feeds.get(room);
    if (!feed) return;
    feed.stop();
    s.feeds.delete(room);
    s.forgetTyping(room);
    this.hub.unlisten(room, feed);
    const last = await this.opts.engine.presence.leave(room, s.user, s.id);
    if (last) this.presence.note(room, s.user, false, this.opts.region);
  }

  /** A direct message to this user: join its room from just before it, if not there already. */
  onInbox(s: Session, e: ChatEvent): void {
    if (s.closed) return;
    if (e.kind.case === "read") {
      s.push(e);
      return;
    }
    // disconnect(): the end of every stream of the user, with the reason.
    if (e.kind.case === "error") {
      void this.close(s, new ConnectError(e.kind.value.text, Code.PermissionDenied));
      return;
    }
    if (e.kind.case !== "message") return;
    const m = e.kind.value;
    if (s.feeds.has(m.room)) return;
    this.enter(s, m.room, m.seq - 1n).catch((err) => s.push(errorEvent(asConnectError(err), "", m.room)));
  }

  /** A new token for the stream's user, before its token expires: the stream lasts until the new exp. */
  private async refresh(s: Session, token: string): Promise<void> {
    if (this.opts.auth?.mode !== "jwt") {
      throw new ConnectError("this server has no tokens (dev mode): its streams do not expire", Code.FailedPrecondition);
    }
    const who = await this.opts.auth.identify({ get: (name) => (name === "authorization" ? `Bearer ${token}` : null) });
    if (!who) throw tokenExpired();
    if (who.user !== s.user) {
      throw new ConnectError(`the token is for "${who.user}" and this stream for "${s.user}": a stream keeps its user`, Code.PermissionDenied);
    }
    if (s.closed) return;
    s.expiresAtMs = who.expiresAtMs;
    if (who.expiresAtMs !== undefined) s.push(refreshedEvent(who.expiresAtMs));
  }

  private endExpired(): void {
    const now = Date.now();
    for (const s of this.sessions) if (s.expiresAtMs !== undefined && now >= s.expiresAtMs) void this.close(s, tokenExpired());
  }

  private tick(beatMs: number): void {
    const now = Date.now();
    for (const s of this.sessions) if (now - s.lastPushAt >= beatMs) s.push(heartbeatEvent());
    for (const limiter of Object.values(this.limiters)) limiter.sweep();
    for (const [key, at] of this.typingAt) if (now - at >= TYPING_INTERVAL_MS) this.typingAt.delete(key);
    this.presence.sweep();
  }

  /** Takes one of `user`'s `kind` tokens, or refuses the call (and counts the refusal). */
  private takeToken(kind: RateKind, user: string, protocol: string): void {
    try {
      this.limiters[kind].take(user);
    } catch (err) {
      this.observer.rateLimited(protocol, kind);
      throw err;
    }
  }

  private logFail(what: string, err: unknown): void {
    this.opts.log.error(`${what} failed`, { err });
  }
}

/** A request's `target` oneof (SendRequest's, the server API's PublishRequest's) as a SendTarget. */
export function sendTarget(t: { case: "room" | "toUser" | undefined; value?: string }): SendTarget {
  return t.case === "toUser" ? { toUser: t.value ?? "" } : { room: t.value ?? "" };
}

/** The room a send goes to: the room named (which `user` may use), or the direct conversation with `to_user`. */
function targetRoom(user: string, target: SendTarget): string {
  if ("toUser" in target) {
    checkUserId(target.toUser, "to_user");
    if (target.toUser === user) throw new ConnectError("to_user is you: a direct message needs another user", Code.InvalidArgument);
    return dmRoom(user, target.toUser);
  }
  if (!target.room) throw new ConnectError("set room or to_user", Code.InvalidArgument);
  return checkRoomAccess(user, target.room);
}

/** A stream's user, as the actor of its requests. */
const actorOf = (s: Session): Actor => ({ user: s.user, admin: s.admin, protocol: s.protocol });

/** The user whose rules and rates a call is held to; undefined for the server API (an Actor with `server`). */
function userOf(who: string | Actor): string | undefined {
  return typeof who === "string" ? who : who.server ? undefined : who.user;
}

function checkClientMsgId(clientMsgId: string): void {
  if (clientMsgId.length > MAX_CLIENT_MSG_ID) {
    throw new ConnectError(`client_msg_id is longer than ${MAX_CLIENT_MSG_ID} characters`, Code.InvalidArgument);
  }
}

/** A session's listener on its user's inbox. */
class InboxListener implements Listener {
  constructor(
    private readonly core: ChatCore,
    private readonly session: Session,
  ) {}

  deliver(e: ChatEvent): void {
    this.core.onInbox(this.session, e);
  }
}
