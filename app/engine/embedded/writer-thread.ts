// The writer thread's program (sqlite-writer.ts starts it): its own connection to the database
// file, one transaction per batch of writes, a reply per request. A module of its own so that it is
// type-checked with the rest; the production build bundles it next to the server's bundle.
import { Database, type Statement } from "bun:sqlite";

/** What the thread is asked, with an id its reply carries. */
export type ThreadRequest = { id: number } & (
  | { op: "open"; path: string; sql: Record<string, string>; maxPages: number; pragmas: string[] }
  // The batch as one JSON string: a structured clone of the same rows cost several times more (measured).
  | { op: "write"; ops: string }
  | { op: "checkpoint" }
  | { op: "close" }
);

export interface ThreadReply {
  id: number;
  /** Set if the request failed: the message, and SQLite's code ("SQLITE_FULL") when it gave one. */
  error?: string;
  code?: string;
}

declare const self: Worker;

let db: Database | undefined;
let statements: Record<string, Statement> = {};

function handle(m: ThreadRequest): void {
  switch (m.op) {
    case "open":
      db = new Database(m.path, { strict: true, safeIntegers: true });
      db.exec("PRAGMA journal_mode = WAL");
      // FULL: a commit is on disk before the sender is acknowledged, even if the machine loses power.
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA busy_timeout = 5000");
      if (m.maxPages) db.exec(`PRAGMA max_page_count = ${m.maxPages}`);
      for (const pragma of m.pragmas) db.exec(pragma);
      for (const [name, sql] of Object.entries(m.sql)) statements[name] = db.prepare(sql);
      return;
    case "write": {
      if (!db) throw new Error("the database is not open");
      const ops = JSON.parse(m.ops) as [string, ...never[]][];
      db.transaction(() => {
        for (const [name, ...bindings] of ops) statements[name].run(...bindings);
      })();
      return;
    }
    case "checkpoint":
      db?.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      return;
    case "close":
      for (const s of Object.values(statements)) s.finalize();
      statements = {};
      db?.close();
      db = undefined;
      return;
  }
}

self.onmessage = ({ data: m }: MessageEvent<ThreadRequest>) => {
  let reply: ThreadReply;
  try {
    handle(m);
    reply = { id: m.id };
  } catch (err) {
    const e = err as { message?: string; code?: string };
    reply = { id: m.id, error: String(e?.message ?? err), code: e?.code };
  }
  self.postMessage(reply);
};
