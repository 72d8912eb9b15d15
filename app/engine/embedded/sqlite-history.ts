// History and room membership in one SQLite file (bun:sqlite, WAL). Appends are group-committed:
// every append made in the same turn of the event loop lands in one transaction and one fsync, so
// durability costs one disk flush per batch rather than per message.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { MessageSchema, type Message } from "../../gen/chat/v1/chat_pb.ts";
import type { Appended, Draft, HistoryStore, Page, ReadRange, RoomDirectory, RoomSummary } from "../engine.ts";
import { SCHEMA } from "./schema.ts";

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

interface Pending {
  draft: Draft;
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

const MAX_SEQ = 9223372036854775807n;

export class SqliteHistory implements HistoryStore, RoomDirectory {
  private readonly db: Database;
  private readonly q: ReturnType<typeof prepare>;
  private readonly lastSeqs = new Map<string, bigint>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true, safeIntegers: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    // FULL: a commit is on disk before the sender is acknowledged, even if the machine loses power.
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.db.exec(SCHEMA);
    this.q = prepare(this.db);
  }

  append(draft: Draft): Promise<Appended> {
    if (this.closed) return Promise.reject(new ConnectError("history store is closed", Code.Unavailable));
    return new Promise((resolve, reject) => {
      this.queue.push({ draft, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: Appended[] = [];
    try {
      this.db.transaction(() => {
        const seen = new Map<string, Message>();
        for (const { draft } of batch) results.push(this.insert(draft, seen));
      })();
    } catch (err) {
      // Nothing of the batch was committed; forget cached seqs that the rollback undid.
      for (const { draft } of batch) this.lastSeqs.delete(draft.room);
      const e = new ConnectError(`history store write failed: ${(err as Error).message}`, Code.Unavailable);
      for (const p of batch) p.reject(e);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  private insert(draft: Draft, seen: Map<string, Message>): Appended {
    const key = draft.clientMsgId && `${draft.room}\0${draft.from}\0${draft.clientMsgId}`;
    if (key) {
      const earlier = seen.get(key);
      if (earlier) return { message: earlier, duplicate: true };
      const row = this.q.byClientId.get(draft.room, draft.from, draft.clientMsgId) as Row | null;
      if (row) return { message: toMessage(row), duplicate: true };
    }
    const seq = this.lastSeqSync(draft.room) + 1n;
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
    this.q.insert.run(row);
    this.q.setLastSeq.run(draft.room, seq);
    this.lastSeqs.set(draft.room, seq);
    const message = toMessage(row);
    if (key) seen.set(key, message);
    return { message, duplicate: false };
  }

  private lastSeqSync(room: string): bigint {
    let seq = this.lastSeqs.get(room);
    if (seq === undefined) {
      const row = this.q.lastSeq.get(room) as { last_seq: bigint } | null;
      seq = row?.last_seq ?? 0n;
      this.lastSeqs.set(room, seq);
    }
    return seq;
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
    return this.lastSeqSync(room);
  }

  async addMember(room: string, user: string): Promise<void> {
    this.q.addRoom.run(room);
    this.q.addMember.run(room, user);
  }

  async removeMember(room: string, user: string): Promise<void> {
    this.q.removeMember.run(room, user);
  }

  async list(user: string): Promise<RoomSummary[]> {
    const rows = this.q.listRooms.all(user) as { name: string; members: bigint; last_seq: bigint }[];
    return rows.map((r) => ({ name: r.name, members: Number(r.members), lastSeq: r.last_seq }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    this.db.close();
  }
}

function prepare(db: Database) {
  const s = (sql: string): Statement => db.prepare(sql);
  const cols = "room, seq, id, sender, text, sent_at_ms, client_msg_id, region";
  return {
    insert: s(`INSERT INTO messages (${cols}) VALUES ($room, $seq, $id, $sender, $text, $sent_at_ms, $client_msg_id, $region)`),
    byClientId: s(`SELECT ${cols} FROM messages WHERE room = ? AND sender = ? AND client_msg_id = ?`),
    lastSeq: s("SELECT last_seq FROM rooms WHERE name = ?"),
    setLastSeq: s("INSERT INTO rooms (name, last_seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET last_seq = ?2"),
    readAfter: s(`SELECT ${cols} FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`),
    readBefore: s(`SELECT ${cols} FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
    addRoom: s("INSERT OR IGNORE INTO rooms (name) VALUES (?)"),
    addMember: s("INSERT OR IGNORE INTO members (room, user) VALUES (?, ?)"),
    removeMember: s("DELETE FROM members WHERE room = ? AND user = ?"),
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
