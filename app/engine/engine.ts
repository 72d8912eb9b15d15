// The seam between the chat core and where state lives. The embedded engine (SQLite + memory) runs
// one region on its own; a NATS engine shares rooms between regions. Both must pass the suite in
// contract.ts. The comments here are the contract: implementations refer back to them.
import type { ChatEvent, Message, MessageUpdate, RoomChange, UpdateKind } from "../gen/chat/v1/chat_pb.ts";

/** What the core asks the history to store; the store assigns id, seq and sent_at. */
export interface Draft {
  room: string;
  from: string;
  text: string;
  /** Empty: no idempotency key. */
  clientMsgId: string;
  region: string;
  /** Set for an entry that records a change to the room instead of a message (text is empty). */
  change?: RoomChange;
  /** The seq of the message of the same room this one answers (0 or unset: none). */
  replyTo?: bigint;
  /** Set for an entry that records a change to an earlier message (text is empty; `message` unset). */
  update?: MessageUpdate;
  /**
   * The webhook deliveries the entry makes, once it has its seq: stored with it, both or neither,
   * where the engine keeps an outbox (WebhookOutbox).
   */
  webhooks?: (stored: Message) => OutboxRow[];
}

/** One webhook delivery to make: an event's body for one endpoint. */
export interface OutboxRow {
  /** The event's id (webhook-id), the same for every endpoint and every try. */
  eventId: string;
  endpoint: string;
  type: string;
  body: string;
}

export interface Delivery extends OutboxRow {
  createdAtMs: number;
  /** Tries made so far. */
  attempts: number;
  /** Why the last try failed ("" before any). */
  lastError: string;
}

/**
 * Webhook deliveries waiting to be made, durable: a restart or a receiver that is down loses none.
 * Each is delivered at least once, until done or dead (a dead letter, kept until redelivered).
 */
export interface WebhookOutbox {
  /**
   * Called once by the dispatcher before it asks for anything, with the endpoints it delivers to
   * and how long a delivery may take: an outbox that needs setting up (NATS) does it here.
   */
  start?(endpoints: string[], ackWaitMs: number): Promise<void>;
  close?(): void;
  /** Deliveries not recorded with an entry of history (a room deleted, a user gone offline). */
  add(rows: OutboxRow[]): Promise<void>;
  /** Up to `limit` live deliveries due at `nowMs`, oldest first. */
  due(nowMs: number, limit: number): Promise<Delivery[]>;
  delivered(d: Delivery): Promise<void>;
  /** A failed try: tried again at `nextAtMs`, or a dead letter when undefined. */
  failed(d: Delivery, nextAtMs: number | undefined, error: string): Promise<void>;
  /** The dead letters, oldest first (of one endpoint, or all for ""). */
  deadLetters(endpoint: string, limit: number): Promise<Delivery[]>;
  /** Dead letters made live again, due now, tries reset (of one endpoint, or all for ""); resolves how many. */
  redeliver(endpoint: string): Promise<number>;
  /** Per endpoint: live deliveries not yet tried, tried and waiting, dead, and when the oldest live one was made. */
  stats(): Promise<Map<string, { pending: number; retrying: number; dead: number; oldestMs: number | undefined }>>;
}

/** A change to a stored message (an edit, a delete, a reaction), and the entry that records it. */
export interface UpdateDraft {
  room: string;
  targetSeq: bigint;
  /** Who changes it: the entry's sender. */
  from: string;
  /** Empty: no idempotency key. */
  clientMsgId: string;
  region: string;
  kind: UpdateKind;
  /** For reactions. */
  emoji: string;
  /**
   * The message's next state from its current one (undefined: no message has that seq), without
   * its version, which the store sets. Returns undefined when nothing would change; throws (a
   * ConnectError) to refuse. The store calls it while no other change of the message can happen,
   * once per attempt: it must not have effects of its own.
   */
  change(current: Message | undefined): Message | undefined;
  /** The webhook deliveries the change makes, from its entry and the message after it (see Draft). */
  webhooks?: (entry: Message, message: Message) => OutboxRow[];
}

export interface Updated {
  /** The message as it is after the call. */
  message: Message;
  /** The entry that recorded the change, with update.message set; unset when nothing changed. */
  entry?: Message;
  /** True when the same request (same sender, key, message, kind and emoji) was made before: `entry` is the original's. */
  duplicate: boolean;
}

export interface Appended {
  message: Message;
  /** True when (room, from, clientMsgId) was stored before: `message` is the original. */
  duplicate: boolean;
}

export interface ReadRange {
  /** Only messages with seq > afterSeq. With afterSeq set the page starts right after it. */
  afterSeq?: bigint;
  /** Only messages with seq < beforeSeq. Without afterSeq the page ends right before it. */
  beforeSeq?: bigint;
  limit: number;
}

export interface Page {
  /** Ascending seq, contiguous. */
  messages: Message[];
  /** More messages exist past the page, in the direction it was read. */
  hasMore: boolean;
}

export interface HistoryStore {
  /**
   * Appends a message. Resolves only once the message is durable, with seq = the room's previous
   * last seq + 1 (the first message of a room has seq 1): no gaps, no duplicates, one order.
   * A non-empty clientMsgId seen before from the same sender in the same room stores nothing and
   * resolves the original message with duplicate = true. Rejects with a ConnectError
   * (Unavailable) when the store cannot take writes; a rejected append is never stored.
   */
  append(draft: Draft): Promise<Appended>;
  /**
   * Changes a stored message and appends the entry that records it, which takes the next seq like
   * any message: both or neither (the NATS engine: the change first, then the entry; a retry with
   * the same key completes an entry that a crash left out). The message's version goes up by one.
   * A deleted message's old text is erased from storage, not only replaced (the embedded store:
   * secure_delete and a WAL checkpoint; JetStream: erased). With a clientMsgId, the same request
   * again changes nothing and resolves the original entry with duplicate = true.
   */
  update(u: UpdateDraft): Promise<Updated>;
  /**
   * Reads one page of a room; an unknown room reads as empty. Every message is in its current
   * state, and every update entry carries the message it changed (update.message), at least as
   * new as the entry's update.version.
   */
  read(room: string, range: ReadRange): Promise<Page>;
  /** The room's newest seq, 0 for a room without messages. */
  lastSeq(room: string): Promise<bigint>;
  /**
   * Removes a room's messages, membership and read state for good (DeleteRoom): the room then
   * reads as empty, is listed nowhere, and its name starts again at seq 1 when it is used again.
   */
  deleteRoom(room: string): Promise<void>;
  close(): Promise<void>;
}

export interface RoomSummary {
  name: string;
  members: number;
  lastSeq: bigint;
}

export interface RoomPage {
  rooms: RoomSummary[];
  /** The last name of this page when more rooms follow (pass it as `after`), else "". */
  next: string;
}

/**
 * Durable room membership: who joined a room and has not left it. A room exists once it has a
 * message: joining or subscribing to a room without one stores nothing, so that subscriptions
 * alone cannot fill the store with rooms.
 */
export interface RoomDirectory {
  /** The room's members (sorted), for the webhooks' "who was not connected". */
  members(room: string): Promise<string[]>;
  /** Records `user` as a member of `room` if the room exists; does nothing otherwise. */
  addMember(room: string, user: string): Promise<void>;
  removeMember(room: string, user: string): Promise<void>;
  /**
   * Up to `limit` rooms whose names sort after `after` (bytewise, case-sensitive), in that order:
   * every public room (no "dm:" prefix) plus the direct-message rooms `user` is in.
   */
  list(user: string, after: string, limit: number): Promise<RoomPage>;
}

/**
 * Topic-based publish/subscribe. Topics are room names and user inboxes ("@" + user id, which no
 * room name can spell). Only message, presence and typing events travel on the bus.
 */
export interface Bus {
  /**
   * Calls `handler` for every event published on `topic` after the returned promise resolves, in
   * publish order per topic, from every instance. Messages are published in seq order per room.
   * Resolves to the unsubscribe function. A shared bus delivers message events at most once (a
   * connection moving to another server loses what was in flight) and may offer a room's newest
   * stored message again: RoomFeed drops seqs it has and fills gaps from history.
   */
  subscribe(topic: string, handler: (event: ChatEvent) => void): Promise<() => void>;
  publish(topic: string, event: ChatEvent): Promise<void>;
}

export interface OnlineEntry {
  user: string;
  region: string;
  sessions: number;
}

/**
 * Who is where. A scope is a room name, or "" for "connected at all". Entries of a crashed
 * instance must expire on their own in a shared implementation.
 */
export interface PresenceStore {
  /** Records a session in scope; true when it is the user's first session there. */
  enter(scope: string, user: string, sessionId: string, region: string): Promise<boolean>;
  /** Removes a session from scope; true when it was the user's last session there. */
  leave(scope: string, user: string, sessionId: string): Promise<boolean>;
  online(scope: string): Promise<OnlineEntry[]>;
}

/**
 * How far each user has read each room: one seq per (user, room), shared by all of the user's
 * sessions and devices (and, in a shared engine, regions). It only moves forward.
 */
export interface ReadStateStore {
  /** The user's last-read seq of each room asked; rooms never read are absent. */
  get(user: string, rooms: string[]): Promise<Map<string, bigint>>;
  /** Raises the user's last-read seq of the room to `seq` unless it is further already; resolves the stored value. */
  raise(user: string, room: string, seq: bigint): Promise<bigint>;
}

export type RoleName = "owner" | "admin" | "member";

/**
 * A created room's rules: its kind and words, who has which role, who is banned or muted. A room
 * nobody created has no record (public, open to all). Until: ms since the epoch, 0 for good.
 */
export interface RoomRecord {
  name: string;
  kind: "public" | "private";
  title: string;
  topic: string;
  createdBy: string;
  createdAtMs: number;
  roles: Map<string, RoleName>;
  bans: Map<string, { untilMs: number; reason: string; by: string }>;
  mutes: Map<string, { untilMs: number; by: string }>;
}

/**
 * Room records and users' blocks: small documents that every instance holds in memory, so that
 * the checks on every send and join are map lookups. Writes are durable (and, in a shared engine,
 * seen by every instance within a second) before they resolve.
 */
export interface AccessStore {
  /** The room's record, or undefined for a room nobody created. Throws Unavailable while the engine cannot serve. */
  room(name: string): RoomRecord | undefined;
  /** Stores `record` if the room has none yet; false when it has one. */
  createRoom(record: RoomRecord): Promise<boolean>;
  /**
   * Replaces the room's record with `change(current)`, atomically with respect to every other
   * change of the room on any instance (tried again on the newest record after a conflict; `change`
   * may throw to refuse). Resolves the stored record, or undefined for a room without one.
   */
  updateRoom(name: string, change: (current: RoomRecord) => RoomRecord): Promise<RoomRecord | undefined>;
  /** Removes the room's record; false when it had none. */
  deleteRoom(name: string): Promise<boolean>;
  /** How many records name `user` as their creator. */
  createdBy(user: string): number;
  /** The users `user` blocked. */
  blocked(user: string): ReadonlySet<string>;
  setBlocked(user: string, other: string, blocked: boolean): Promise<void>;
  /** The webhook endpoints made through the server API, by id: each a document the webhooks module reads (JSON). */
  webhookEndpoints(): ReadonlyMap<string, string>;
  /** Stores an endpoint's document if it has none (value), or deletes it (undefined); false when there was nothing to do. */
  setWebhookEndpoint(id: string, value: string | undefined): Promise<boolean>;
  /** Calls `listener` after each change of the endpoints by any instance. Returns the unsubscribe function. */
  watchWebhookEndpoints(listener: () => void): () => void;
  /**
   * Calls `listener` after each change of a room's record by any instance, with the record before
   * and after (undefined: none). Returns the unsubscribe function.
   */
  watch(listener: (room: string, now: RoomRecord | undefined, before: RoomRecord | undefined) => void): () => void;
}

export interface Engine {
  readonly name: string;
  readonly history: HistoryStore;
  readonly rooms: RoomDirectory;
  readonly access: AccessStore;
  readonly reads: ReadStateStore;
  readonly bus: Bus;
  readonly presence: PresenceStore;
  /** Where webhook deliveries wait; an engine without one cannot send webhooks (yet: NATS). */
  readonly outbox?: WebhookOutbox;
  /**
   * Optional, for an engine that lives on a service it reaches over the network. Calls `listener`
   * at once with whether the engine can serve now, then on every change (the NATS engine: connected
   * and its stream and buckets set up). Until it is ready its operations fail fast with a
   * ConnectError (Unavailable). It never throws for an unreachable service: it keeps trying and
   * logs why. An engine without it is ready as soon as it exists. The embedded engine is not ready
   * while its store cannot write (a full disk); its reads go on. Returns the unsubscribe function.
   */
  watchReady?(listener: (ready: boolean) => void): () => void;
  close(): Promise<void>;
}
