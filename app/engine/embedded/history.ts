// History and room membership in one SQLite file (bun:sqlite, WAL). Writes are group-committed on
// a writer thread (sqlite-writer.ts): one batch is committed at a time, and everything that arrives
// while it is (appends, membership changes) makes the next one, so durability costs one disk flush
// per batch and never blocks the event loop. Reads use this thread's own connection, which WAL lets
// read while the writer writes. Seqs are assigned here, when a batch is formed: this is the file's
// only writer, so the cached last seq of each room is the truth.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MessageSchema, MessageUpdateSchema, RoomChangeSchema, type Message, type Reaction } from "../../gen/chat/v1/chat_pb.ts";
import type { Appended, Draft, HistoryStore, Page, ReadRange, RoomDirectory, RoomPage, UpdateDraft, Updated } from "../engine.ts";
import { attachTargets, isSameRequest } from "../updates.ts";
import { KeyedQueue } from "../keyed-queue.ts";
import { insertOp } from "./outbox.ts";
import type { Logger } from "../../log.ts";
import { MIGRATIONS, SCHEMA } from "./schema.ts";
import { InlineWriter, ThreadWriter, WriteError, type WriteOp, type Writer } from "./sqlite-writer.ts";

interface Row {
  room: string;
  seq: bigint;
  id: string;
  sender: string;
  text: string;
  sent_at_ms: bigint;
  client_msg_id: string;
  region: string;
  /** A RoomChange as protobuf JSON, for an entry that records one; null for a message. */
  change: string | null;
  reply_to: bigint;
  edited_at_ms: bigint;
  deleted: bigint;
  version: bigint;
  /** [{emoji, users}] as JSON; null for none. */
  reactions: string | null;
  /** A MessageUpdate (without its message) as protobuf JSON, for an entry that records one; null otherwise. */
  update_json: string | null;
}

/**
 * Something waiting for the next batch: an append, or a membership change. `solo`: it was in a
 * batch that failed, and is tried again in a batch of its own, so that one row that cannot be
 * written fails alone rather than with everyone else's.
 */
type Pending = (
  | { draft: Draft; resolve: (a: Appended) => void; reject: (e: unknown) => void; ops?: WriteOp[] }
  | { ops: WriteOp[]; resolve: () => void; reject: (e: unknown) => void }
) & { solo?: boolean };

const MAX_SEQ = 9223372036854775807n;
/** How often a store that cannot write tries again by itself. */
const PROBE_MS = 5000;
/** Write failures that are the store's, not one row's: out of space, I/O errors, a read-only file. */
const STORE_FAILURES = new Set(["SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_CORRUPT"]);

export interface StoreOptions {
  /** EDGECHAT_DB_MAX_BYTES: writes that would grow the file past this fail like a full disk; 0: none. */
  maxBytes?: number;
  log?: Logger;
}

export class SqliteHistory implements HistoryStore, RoomDirectory {
  private readonly db: Database;
  private readonly q: ReturnType<typeof prepare>;
  private readonly writer: Writer;
  /** Each room's last seq handed out: committed, or in the batch being committed. */
  private readonly assigned = new Map<string, bigint>();
  /** Each room's last committed seq: what readers may be told. */
  private readonly committed = new Map<string, bigint>();
  private queue: Pending[] = [];
  private writing = false;
  private flushScheduled = false;
  private closed = false;
  private idle: (() => void) | undefined;
  private writable = true;
  private readonly writableListeners = new Set<(writable: boolean) => void>();
  private probeTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * Each message's change in progress: one at a time per message, so that each reads what the one
   * before committed; changes of different messages go into the same batches, as appends do.
   */
  private readonly updating = new KeyedQueue();
  /** A WAL checkpoint about to be asked for: the deletes committed until then share it. */
  private erasing: Promise<void> | undefined;

  constructor(
    path: string,
    private readonly opts: StoreOptions = {},
  ) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true, safeIntegers: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    // One transaction: a fresh data dir gets its tables with one fsync rather than one per statement.
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      const { user_version: version } = this.db.query("PRAGMA user_version").get() as { user_version: bigint };
      for (const sql of MIGRATIONS.slice(Number(version))) this.db.exec(sql);
      this.db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    })();
    this.q = prepare(this.db);
    // An in-memory database exists only on this connection: it is written here.
    this.writer = path === ":memory:" ? new InlineWriter(this.db, opts.maxBytes) : new ThreadWriter(path, opts.maxBytes);
  }

  /**
   * Calls `listener` with whether the store takes writes, at once and on every change: it stops
   * when a write fails for lack of space or an I/O error, and starts again with the first commit.
   */
  watchWritable(listener: (writable: boolean) => void): () => void {
    this.writableListeners.add(listener);
    listener(this.writable);
    return () => this.writableListeners.delete(listener);
  }

  private setWritable(writable: boolean, err?: WriteError): void {
    if (writable === this.writable) return;
    this.writable = writable;
    if (writable) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      this.opts.log?.info("history store takes writes again");
    } else {
      this.opts.log?.error("history store cannot write; not ready until it can", { reason: err?.message, code: err?.code });
      // Nothing may come to write while the instance is not ready: try on its own.
      this.probeTimer = setInterval(() => {
        if (!this.writing && this.queue.length === 0) this.enqueue({ ops: [["probe"], ["unprobe"]], resolve: () => {}, reject: () => {} });
      }, PROBE_MS);
      this.probeTimer.unref?.();
    }
    for (const l of this.writableListeners) l(writable);
  }

  append(draft: Draft): Promise<Appended> {
    return new Promise((resolve, reject) => this.enqueue({ draft, resolve, reject }));
  }

  update(u: UpdateDraft): Promise<Updated> {
    return this.updating.run(`${u.room}\0${u.targetSeq}`, () => this.applyUpdate(u));
  }

  /** Truncates the WAL once the deletes committed by now are in the file; one checkpoint for all that ask at once. */
  private erase(): Promise<void> {
    this.erasing ??= Promise.resolve().then(() => {
      this.erasing = undefined;
      return this.writer.checkpoint();
    });
    return this.erasing;
  }

  private async applyUpdate(u: UpdateDraft): Promise<Updated> {
    const row = this.q.bySeq.get(u.room, u.targetSeq) as Row | null;
    const current = row ? toMessage(row) : undefined;
    if (u.clientMsgId && current) {
      const earlier = (this.q.byUpdateKey.all(u.room, u.from, u.clientMsgId) as Row[]).map(toMessage).find((m) => isSameRequest(m, u));
      if (earlier) return { message: current, entry: attachTargets([earlier], [current])[0], duplicate: true };
    }
    const next = u.change(current);
    if (!next || !current) return { message: current!, duplicate: false };
    next.version = current.version + 1n;
    const update = create(MessageUpdateSchema, { kind: u.kind, targetSeq: u.targetSeq, emoji: u.emoji, version: next.version });
    const webhooks = u.webhooks && ((entry: Message) => u.webhooks!(entry, next));
    const draft: Draft = { room: u.room, from: u.from, text: "", clientMsgId: u.clientMsgId, region: u.region, update, webhooks };
    const ops: WriteOp[] = [
      [
        "updateMessage",
        {
          room: u.room,
          seq: Number(u.targetSeq),
          text: next.text,
          edited_at_ms: next.editedAt ? timestampMs(next.editedAt) : 0,
          deleted: next.deleted ? 1 : 0,
          version: Number(next.version),
          reactions: reactionsJson(next.reactions),
        },
      ],
    ];
    const { message: entry } = await new Promise<Appended>((resolve, reject) => this.enqueue({ draft, ops, resolve, reject }));
    // The old text is overwritten in the file (secure_delete) and in the WAL (truncated once copied back).
    if (next.deleted) await this.erase();
    return { message: next, entry: attachTargets([entry], [next])[0], duplicate: false };
  }

  async addMember(room: string, user: string): Promise<void> {
    return this.write([["addMember", room, user]]);
  }

  async members(room: string): Promise<string[]> {
    return (this.q.members.all(room) as { user: string }[]).map((r) => r.user);
  }

  async removeMember(room: string, user: string): Promise<void> {
    return this.write([["removeMember", room, user]]);
  }

  async deleteRoom(room: string): Promise<void> {
    await this.write([
      ["deleteMessages", room],
      ["deleteMembers", room],
      ["deleteRoom", room],
      ["deleteReads", room],
    ]);
    // A batch formed before this one committed may have handed out seqs of the old room: those
    // rows were deleted with it, and the next message starts again at 1.
    this.assigned.delete(room);
    this.committed.delete(room);
  }

  /** Commits `ops` in the next batch, with whatever else is queued: the file's one writer. */
  write(ops: WriteOp[]): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ ops, resolve, reject }));
  }

  /** This thread's read connection (WAL: it reads while the writer thread writes). */
  get reader(): Database {
    return this.db;
  }

  private enqueue(p: Pending): void {
    if (this.closed) return p.reject(new ConnectError("history store is closed", Code.Unavailable));
    this.queue.push(p);
    // Whatever else this turn of the event loop appends joins the same batch.
    if (!this.writing && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Commits everything queued as one batch; what queues meanwhile is the next batch. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.writing || this.queue.length === 0) {
      if (!this.writing) this.idle?.();
      return;
    }
    const batch = this.takeBatch();
    const ops: WriteOp[] = [];
    const results: (Appended | undefined)[] = [];
    const rooms = new Set<string>();
    const seen = new Map<string, Message>();
    for (const p of batch) {
      if ("draft" in p) {
        const a = this.assign(p.draft, seen, ops);
        results.push(a);
        if (p.ops) ops.push(...p.ops);
        if (!a.duplicate) rooms.add(p.draft.room);
      } else {
        ops.push(...p.ops);
        results.push(undefined);
      }
    }
    this.writing = true;
    this.writer
      .write(ops)
      .then(
        () => {
          for (const room of rooms) this.committed.set(room, this.assigned.get(room)!);
          batch.forEach((p, i) => ("draft" in p ? p.resolve(results[i]!) : p.resolve()));
          this.setWritable(true);
        },
        (err: Error) => {
          // Nothing of the batch was committed: forget the seqs it took.
          for (const room of rooms) this.assigned.delete(room);
          if (batch.length > 1) {
            // Which of them failed it is unknown: each goes again on its own, first in line.
            for (const p of batch) p.solo = true;
            this.queue.unshift(...batch);
            return;
          }
          if (err instanceof WriteError && STORE_FAILURES.has(err.code ?? "")) this.setWritable(false, err);
          batch[0].reject(new ConnectError(`history store write failed: ${err.message}`, Code.Unavailable));
        },
      )
      .finally(() => {
        this.writing = false;
        this.flush();
      });
  }

  /** The next batch: a solo item alone, or everything queued up to the next solo item. */
  private takeBatch(): Pending[] {
    if (this.queue[0].solo) return this.queue.splice(0, 1);
    const end = this.queue.findIndex((p) => p.solo);
    return end < 0 ? this.queue.splice(0) : this.queue.splice(0, end);
  }

  /** The message a draft becomes: a new seq, or the original of a repeated client_msg_id. */
  private assign(draft: Draft, seen: Map<string, Message>, ops: WriteOp[]): Appended {
    // An update entry's key was looked up by update(), which holds the room's changes meanwhile.
    const key = !draft.update && draft.clientMsgId && `${draft.room}\0${draft.from}\0${draft.clientMsgId}`;
    if (key) {
      const earlier = seen.get(key);
      if (earlier) return { message: earlier, duplicate: true };
      // Every earlier batch is committed by now, so this connection sees it.
      const row = this.q.byClientId.get(draft.room, draft.from, draft.clientMsgId) as Row | null;
      if (row) return { message: toMessage(row), duplicate: true };
    }
    const seq = (this.assigned.get(draft.room) ?? this.storedLastSeq(draft.room)) + 1n;
    const row: Row = {
      room: draft.room,
      seq,
      id: crypto.randomUUID(),
      sender: draft.from,
      text: draft.text,
      sent_at_ms: BigInt(Date.now()),
      client_msg_id: draft.clientMsgId,
      region: draft.region,
      change: draft.change ? toJsonString(RoomChangeSchema, draft.change) : null,
      reply_to: draft.replyTo ?? 0n,
      edited_at_ms: 0n,
      deleted: 0n,
      version: 0n,
      reactions: null,
      update_json: draft.update ? toJsonString(MessageUpdateSchema, draft.update) : null,
    };
    // Seqs and times fit a double by far (2^53).
    const { edited_at_ms: _e, deleted: _d, version: _v, reactions: _r, ...inserted } = row;
    ops.push(
      ["insert", { ...inserted, seq: Number(seq), sent_at_ms: Number(row.sent_at_ms), reply_to: Number(row.reply_to) }],
      ["setLastSeq", draft.room, Number(seq)],
    );
    this.assigned.set(draft.room, seq);
    const message = toMessage(row);
    if (key) seen.set(key, message);
    // The entry's webhook deliveries, in its own transaction: both or neither.
    for (const r of draft.webhooks?.(message) ?? []) ops.push(insertOp(r, Number(row.sent_at_ms)));
    return { message, duplicate: false };
  }

  private storedLastSeq(room: string): bigint {
    const row = this.q.lastSeq.get(room) as { last_seq: bigint } | null;
    return row?.last_seq ?? 0n;
  }

  async read(room: string, range: ReadRange): Promise<Page> {
    const before = range.beforeSeq && range.beforeSeq > 0n ? range.beforeSeq : MAX_SEQ;
    const limit = BigInt(range.limit);
    if (range.afterSeq !== undefined) {
      const rows = this.q.readAfter.all(room, range.afterSeq, before, limit + 1n) as Row[];
      const hasMore = rows.length > range.limit;
      return { messages: this.withTargets(room, rows.slice(0, range.limit).map(toMessage)), hasMore };
    }
    const rows = this.q.readBefore.all(room, before, limit + 1n) as Row[];
    const hasMore = rows.length > range.limit;
    return { messages: this.withTargets(room, rows.slice(0, range.limit).reverse().map(toMessage)), hasMore };
  }

  /** A page with each update entry's message attached, as it is now (read on this connection, like the page). */
  private withTargets(room: string, page: Message[]): Message[] {
    const wanted = new Set(page.flatMap((m) => (m.update ? [m.update.targetSeq] : [])));
    if (wanted.size === 0) return page;
    const targets = [...wanted].flatMap((seq) => {
      const row = this.q.bySeq.get(room, seq) as Row | null;
      return row ? [toMessage(row)] : [];
    });
    return attachTargets(page, targets);
  }

  async lastSeq(room: string): Promise<bigint> {
    let seq = this.committed.get(room);
    if (seq === undefined) {
      // Committed rows only; a batch in flight updates the cache when it commits.
      seq = this.storedLastSeq(room);
      this.committed.set(room, seq);
    }
    return seq;
  }

  /** ReadStateStore.get, on this thread's connection. */
  async readState(user: string, rooms: string[]): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for (const room of rooms) {
      const r = this.q.readState.get(user, room) as { seq: bigint } | null;
      if (r) out.set(room, r.seq);
    }
    return out;
  }

  /** ReadStateStore.raise: through the writer with everything else, then read back. */
  async raiseRead(user: string, room: string, seq: bigint): Promise<bigint> {
    await this.write([["raiseRead", user, room, Number(seq)]]);
    return (await this.readState(user, [room])).get(room) ?? seq;
  }

  async list(user: string, after: string, limit: number): Promise<RoomPage> {
    const rows = this.q.listRooms.all(after, user, limit + 1) as { name: string; members: bigint; last_seq: bigint }[];
    const rooms = rows.slice(0, limit).map((r) => ({ name: r.name, members: Number(r.members), lastSeq: r.last_seq }));
    return { rooms, next: rows.length > limit ? rooms[rooms.length - 1].name : "" };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // What was accepted before closing is still committed (or rejected), never dropped.
    if (this.writing || this.queue.length > 0) {
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        this.flush();
      });
    }
    clearInterval(this.probeTimer);
    await this.writer.close();
    this.db.close();
  }
}

const COLS = "room, seq, id, sender, text, sent_at_ms, client_msg_id, region, change, reply_to, edited_at_ms, deleted, version, reactions, update_json";

/**
 * Every read, by name. Each must use an index for what grows (a room's messages, the rooms, a
 * room's members): query-plans.test.ts checks their plans.
 */
export const READ_SQL = {
  // The `<> ''` repeats the partial index's condition: without it SQLite cannot use that index
  // and reads the room's whole history on every send with a client_msg_id.
  byClientId: `SELECT ${COLS} FROM messages WHERE room = ? AND sender = ? AND client_msg_id = ? AND client_msg_id <> '' AND update_json IS NULL`,
  // The entries of a sender's changes with a key (one key may name changes of several messages).
  // INDEXED BY: without statistics SQLite would pick the primary key and read the whole room.
  byUpdateKey: `SELECT ${COLS} FROM messages INDEXED BY messages_update_key WHERE room = ? AND sender = ? AND client_msg_id = ? AND client_msg_id <> '' AND update_json IS NOT NULL`,
  bySeq: `SELECT ${COLS} FROM messages WHERE room = ? AND seq = ?`,
  lastSeq: "SELECT last_seq FROM rooms WHERE name = ?",
  members: "SELECT user FROM members WHERE room = ? ORDER BY user",
  readState: "SELECT seq FROM read_state WHERE user = ? AND room = ?",
  readAfter: `SELECT ${COLS} FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`,
  readBefore: `SELECT ${COLS} FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
  // One page of rooms by name, per isListedToAll (rules/names.ts): the rooms listed to all (the
  // ranges around "_" and "dm:", so that other people's direct-message and unlisted rooms are
  // never even read), and the caller's own direct-message and unlisted rooms (through
  // members_by_user). ":" + 1 is ";", so [dm:, dm;) is exactly the names that start with "dm:";
  // "_" + 1 is "`", so [_, `) is the names that start with "_"; neither ";" nor "`" is in the
  // alphabet. One bound per range, so that SQLite seeks to it rather than reading from the start
  // and filtering.
  listRooms: `SELECT name, last_seq, (SELECT count(*) FROM members m WHERE m.room = name) AS members FROM (
      SELECT name, last_seq FROM rooms WHERE name > ?1 AND name < '_'
      UNION ALL
      SELECT name, last_seq FROM rooms WHERE name > max(?1, '\`') AND name < 'dm:'
      UNION ALL
      SELECT name, last_seq FROM rooms WHERE name > max(?1, 'dm;')
      UNION ALL
      SELECT r.name, r.last_seq FROM members u JOIN rooms r ON r.name = u.room
        WHERE u.user = ?2 AND u.room > ?1 AND u.room >= 'dm:' AND u.room < 'dm;'
      UNION ALL
      SELECT r.name, r.last_seq FROM members u JOIN rooms r ON r.name = u.room
        WHERE u.user = ?2 AND u.room > ?1 AND u.room >= '_' AND u.room < '\`'
    ) ORDER BY name LIMIT ?3`,
} as const;

function prepare(db: Database): Record<keyof typeof READ_SQL, Statement> {
  return Object.fromEntries(Object.entries(READ_SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Record<keyof typeof READ_SQL, Statement>;
}

function toMessage(r: Row): Message {
  return create(MessageSchema, {
    id: r.id,
    room: r.room,
    seq: r.seq,
    from: r.sender,
    text: r.text,
    sentAt: timestampFromMs(Number(r.sent_at_ms)),
    clientMsgId: r.client_msg_id,
    region: r.region,
    change: r.change === null ? undefined : fromJsonString(RoomChangeSchema, r.change),
    replyTo: r.reply_to,
    editedAt: r.edited_at_ms > 0n ? timestampFromMs(Number(r.edited_at_ms)) : undefined,
    deleted: r.deleted !== 0n,
    version: r.version,
    reactions:
      r.reactions === null ? [] : (JSON.parse(r.reactions) as StoredReaction[]).map((x) => ({ emoji: x.emoji, count: x.users.length, users: x.users })),
    update: r.update_json === null ? undefined : fromJsonString(MessageUpdateSchema, r.update_json),
  });
}

interface StoredReaction {
  emoji: string;
  users: string[];
}

/** Reactions as stored: the count is the users'. */
function reactionsJson(reactions: Reaction[]): string | null {
  if (reactions.length === 0) return null;
  return JSON.stringify(reactions.map((x): StoredReaction => ({ emoji: x.emoji, users: x.users })));
}
