// History and room membership in one SQLite file (bun:sqlite, WAL). Writes are group-committed on
// a writer thread (sqlite-writer.ts): one batch is committed at a time, and everything that arrives
// while it is (appends, membership changes) makes the next one, so durability costs one disk flush
// per batch and never blocks the event loop. Reads use this thread's own connection, which WAL lets
// read while the writer writes. Seqs are assigned here, when a batch is formed: this is the file's
// only writer, so the cached last seq of each room is the truth.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MessageSchema, type Message } from "../../gen/chat/v1/chat_pb.ts";
import type { Appended, Draft, HistoryStore, Page, ReadRange, RoomDirectory, RoomSummary } from "../engine.ts";
import { SCHEMA } from "./schema.ts";
import { InlineWriter, ThreadWriter, type WriteOp, type Writer } from "./sqlite-writer.ts";

interface Row {
  room: string;
  seq: bigint;
  id: string;
  sender: string;
  text: string;
  sent_at_ms: bigint;
  client_msg_id: string;
  region: string;
}

/** Something waiting for the next batch: an append, or a membership change. */
type Pending =
  | { draft: Draft; resolve: (a: Appended) => void; reject: (e: unknown) => void }
  | { ops: WriteOp[]; resolve: () => void; reject: (e: unknown) => void };

const MAX_SEQ = 9223372036854775807n;

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

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true, safeIntegers: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    // One transaction: a fresh data dir gets its tables with one fsync rather than one per statement.
    this.db.transaction(() => this.db.exec(SCHEMA))();
    this.q = prepare(this.db);
    // An in-memory database exists only on this connection: it is written here.
    this.writer = path === ":memory:" ? new InlineWriter(this.db) : new ThreadWriter(path);
  }

  append(draft: Draft): Promise<Appended> {
    return new Promise((resolve, reject) => this.enqueue({ draft, resolve, reject }));
  }

  async addMember(room: string, user: string): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ ops: [["addRoom", room], ["addMember", room, user]], resolve, reject }));
  }

  async removeMember(room: string, user: string): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ ops: [["removeMember", room, user]], resolve, reject }));
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
    const batch = this.queue;
    this.queue = [];
    const ops: WriteOp[] = [];
    const results: (Appended | undefined)[] = [];
    const rooms = new Set<string>();
    const seen = new Map<string, Message>();
    for (const p of batch) {
      if ("draft" in p) {
        const a = this.assign(p.draft, seen, ops);
        results.push(a);
        if (!a.duplicate) rooms.add(p.draft.room);
      } else {
        ops.push(...p.ops);
        results.push(undefined);
      }
    }
    this.writing = true;
    this.writer.write(ops).then(
      () => {
        for (const room of rooms) this.committed.set(room, this.assigned.get(room)!);
        batch.forEach((p, i) => ("draft" in p ? p.resolve(results[i]!) : p.resolve()));
      },
      (err: Error) => {
        // Nothing of the batch was committed: forget the seqs it took.
        for (const room of rooms) this.assigned.delete(room);
        const e = new ConnectError(`history store write failed: ${err.message}`, Code.Unavailable);
        for (const p of batch) p.reject(e);
      },
    ).finally(() => {
      this.writing = false;
      this.flush();
    });
  }

  /** The message a draft becomes: a new seq, or the original of a repeated client_msg_id. */
  private assign(draft: Draft, seen: Map<string, Message>, ops: WriteOp[]): Appended {
    const key = draft.clientMsgId && `${draft.room}\0${draft.from}\0${draft.clientMsgId}`;
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
    };
    // Seqs and times fit a double by far (2^53).
    ops.push(["insert", { ...row, seq: Number(seq), sent_at_ms: Number(row.sent_at_ms) }], ["setLastSeq", draft.room, Number(seq)]);
    this.assigned.set(draft.room, seq);
    const message = toMessage(row);
    if (key) seen.set(key, message);
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
      return { messages: rows.slice(0, range.limit).map(toMessage), hasMore };
    }
    const rows = this.q.readBefore.all(room, before, limit + 1n) as Row[];
    const hasMore = rows.length > range.limit;
    return { messages: rows.slice(0, range.limit).reverse().map(toMessage), hasMore };
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

  async list(user: string): Promise<RoomSummary[]> {
    const rows = this.q.listRooms.all(user) as { name: string; members: bigint; last_seq: bigint }[];
    return rows.map((r) => ({ name: r.name, members: Number(r.members), lastSeq: r.last_seq }));
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
    await this.writer.close();
    this.db.close();
  }
}

function prepare(db: Database) {
  const s = (sql: string): Statement => db.prepare(sql);
  const cols = "room, seq, id, sender, text, sent_at_ms, client_msg_id, region";
  return {
    byClientId: s(`SELECT ${cols} FROM messages WHERE room = ? AND sender = ? AND client_msg_id = ?`),
    lastSeq: s("SELECT last_seq FROM rooms WHERE name = ?"),
    readAfter: s(`SELECT ${cols} FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`),
    readBefore: s(`SELECT ${cols} FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
    listRooms: s(`SELECT r.name AS name, r.last_seq AS last_seq,
        (SELECT count(*) FROM members m WHERE m.room = r.name) AS members
      FROM rooms r
      WHERE r.name NOT LIKE 'dm:%' OR r.name IN (SELECT room FROM members WHERE user = ?1)
      ORDER BY r.name`),
  };
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
  });
}
