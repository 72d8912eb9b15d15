// Writes to the SQLite file from a thread of their own. A commit with synchronous = FULL waits for
// the disk (an fsync, from a fraction of a millisecond to many under I/O contention); on the event
// loop that wait stops every stream of the server. On a writer thread the loop goes on serving
// while the disk works, and the appends that arrive meanwhile make the next batch (measured on the
// fan-out benchmark with one subscriber: the data dir on tmpfs, where fsync is free, served
// 1.6-2.8x the Sends of the same server on disk).

import { dirname, join } from "node:path";
import type { Database, Statement } from "bun:sqlite";
import type { ThreadReply, ThreadRequest } from "./writer-thread.ts";

/** One write: a statement's name and its bindings (JSON values: integers as numbers, not bigints). */
export type WriteOp = [statement: string, ...bindings: unknown[]];

export interface Writer {
  /** Runs `ops` in one transaction; resolves once it is committed (durable), rejects if rolled back. */
  write(ops: WriteOp[]): Promise<void>;
  /**
   * Copies the WAL back into the database file and truncates it, so that what was overwritten
   * (a deleted message's text) is in neither file. Best effort: a reader in the middle of a read
   * keeps the WAL until the next one.
   */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

/** The statements writers know, by name. */
export const WRITE_SQL: Record<string, string> = {
  insert:
    "INSERT INTO messages (room, seq, id, sender, text, sent_at_ms, client_msg_id, region, change, reply_to, update_json) VALUES ($room, $seq, $id, $sender, $text, $sent_at_ms, $client_msg_id, $region, $change, $reply_to, $update_json)",
  updateMessage:
    "UPDATE messages SET text = $text, edited_at_ms = $edited_at_ms, deleted = $deleted, version = $version, reactions = $reactions WHERE room = $room AND seq = $seq",
  setLastSeq: "INSERT INTO rooms (name, last_seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET last_seq = ?2",
  // Only a room that exists (has a message): joining an empty room stores nothing.
  addMember: "INSERT OR IGNORE INTO members (room, user) SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM rooms WHERE name = ?1)",
  removeMember: "DELETE FROM members WHERE room = ? AND user = ?",
  // DeleteRoom: its messages, its membership and its seq go.
  deleteMessages: "DELETE FROM messages WHERE room = ?",
  deleteMembers: "DELETE FROM members WHERE room = ?",
  deleteRoom: "DELETE FROM rooms WHERE name = ?",
  deleteReads: "DELETE FROM read_state WHERE room = ?",
  // Read state only moves forward.
  raiseRead: "INSERT INTO read_state (user, room, seq) VALUES (?1, ?2, ?3) ON CONFLICT (user, room) DO UPDATE SET seq = max(seq, ?3)",
  // Webhook deliveries (outbox.ts).
  insertOutbox:
    "INSERT OR IGNORE INTO webhook_outbox (event_id, endpoint, type, body, created_at_ms, next_at_ms) VALUES ($event_id, $endpoint, $type, $body, $created_at_ms, $created_at_ms)",
  outboxDelivered: "DELETE FROM webhook_outbox WHERE event_id = ? AND endpoint = ?",
  outboxFailed: "UPDATE webhook_outbox SET attempts = attempts + 1, next_at_ms = ?3, dead = ?4, last_error = ?5 WHERE event_id = ?1 AND endpoint = ?2",
  outboxRedeliver: "UPDATE webhook_outbox SET dead = 0, attempts = 0, next_at_ms = ?2, last_error = '' WHERE dead = 1 AND (?1 = '' OR endpoint = ?1)",
  putDoc: "INSERT INTO docs (kind, id, value, revision) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, id) DO UPDATE SET value = ?3, revision = ?4",
  deleteDoc: "DELETE FROM docs WHERE kind = ? AND id = ?",
  // Whether the store can take a write again after one failed for lack of space: a row that needs
  // pages of its own, gone again in the same transaction.
  probe: "INSERT OR REPLACE INTO write_probe (id, pad) VALUES (1, zeroblob(8192))",
  unprobe: "DELETE FROM write_probe",
};

/** Deleted and overwritten content is zeroed in the file, not only unlinked: a deleted message's text is gone for real. */
export const SECURE_DELETE = "PRAGMA secure_delete = ON";

/** A failed write: its SQLite code ("SQLITE_FULL") when SQLite gave one. */
export class WriteError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

// The thread's program is writer-thread.ts. From the sources it is started as it is; the production
// build bundles it as an entry point of its own, next to the server's bundle, and tells this module
// where (scripts/build.ts): a bundle has no source file to point a worker at.
declare const EDGECHAT_WRITER_THREAD: string | undefined;
const THREAD = typeof EDGECHAT_WRITER_THREAD === "string" ? join(dirname(Bun.main), EDGECHAT_WRITER_THREAD) : join(import.meta.dir, "writer-thread.ts");

/** A writer on its own thread, with its own connection to the database file at `path`. */
export class ThreadWriter implements Writer {
  private readonly worker: Worker & { ref(): void; unref(): void };
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private next = 0;
  private broken: Error | undefined;

  constructor(path: string, maxBytes = 0) {
    this.worker = new Worker(THREAD) as Worker & { ref(): void; unref(): void };
    this.worker.onmessage = ({ data }: MessageEvent<ThreadReply>) => {
      const w = this.waiting.get(data.id);
      this.waiting.delete(data.id);
      if (this.waiting.size === 0) this.worker.unref();
      if (data.error === undefined) w?.resolve();
      else w?.reject(new WriteError(data.error, data.code));
    };
    this.worker.onerror = (e: ErrorEvent) => {
      // The thread is gone: nothing in flight can be known committed, nothing more can be.
      this.broken = new Error(`the writer thread failed: ${e.message}`);
      for (const w of this.waiting.values()) w.reject(this.broken);
      this.waiting.clear();
    };
    this.call({ op: "open", path, sql: WRITE_SQL, maxPages: maxPages(maxBytes), pragmas: [SECURE_DELETE] }).catch((err: Error) => (this.broken ??= err));
  }

  write(ops: WriteOp[]): Promise<void> {
    // As one string: a structured clone of the same rows cost several times more (measured).
    return this.call({ op: "write", ops: JSON.stringify(ops) });
  }

  checkpoint(): Promise<void> {
    return this.call({ op: "checkpoint" });
  }

  async close(): Promise<void> {
    if (!this.broken) await this.call({ op: "close" }).catch(() => {});
    this.worker.terminate();
  }

  private call(message: DistributiveOmit<ThreadRequest, "id">): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.next++;
    // The thread keeps the process alive only while it has work.
    if (this.waiting.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id } satisfies ThreadRequest);
    });
  }
}

/** A writer on the caller's connection, committing before it returns: for an in-memory database, which no other thread can open. */
export class InlineWriter implements Writer {
  private readonly statements: Record<string, Statement>;

  constructor(
    private readonly db: Database,
    maxBytes = 0,
  ) {
    if (maxBytes) db.exec(`PRAGMA max_page_count = ${maxPages(maxBytes)}`);
    db.exec(SECURE_DELETE);
    this.statements = Object.fromEntries(Object.entries(WRITE_SQL).map(([name, sql]) => [name, db.prepare(sql)]));
  }

  async write(ops: WriteOp[]): Promise<void> {
    try {
      this.db.transaction(() => {
        for (const [name, ...bindings] of ops) this.statements[name].run(...(bindings as never[]));
      })();
    } catch (err) {
      throw new WriteError(String((err as Error)?.message ?? err), (err as { code?: string })?.code);
    }
  }

  async checkpoint(): Promise<void> {}

  async close(): Promise<void> {}
}

/** EDGECHAT_DB_MAX_BYTES as SQLite's max_page_count, in pages of SQLite's default 4096 bytes; 0: no limit. */
function maxPages(maxBytes: number): number {
  return maxBytes > 0 ? Math.max(1, Math.floor(maxBytes / 4096)) : 0;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
