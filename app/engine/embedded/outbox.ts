// The embedded engine's webhook outbox: a table in the same SQLite file, written by the same writer
// thread, so that a delivery is durable before anything depends on it, and one made by a message is
// committed in the message's own transaction (history.ts assign()).
import type { Database, Statement } from "bun:sqlite";
import type { Delivery, OutboxRow, WebhookOutbox } from "../engine.ts";
import type { WriteOp } from "./sqlite-writer.ts";

interface Row {
  event_id: string;
  endpoint: string;
  type: string;
  body: string;
  created_at_ms: bigint;
  attempts: bigint;
  last_error: string;
}

const COLS = "event_id, endpoint, type, body, created_at_ms, attempts, last_error";

/** Every read, by name; query-plans.test.ts checks that each uses an index. */
export const OUTBOX_SQL = {
  outboxDue: `SELECT ${COLS} FROM webhook_outbox WHERE dead = 0 AND next_at_ms <= ? ORDER BY next_at_ms LIMIT ?`,
  outboxDead: `SELECT ${COLS} FROM webhook_outbox WHERE dead = 1 AND (?1 = '' OR endpoint = ?1) ORDER BY created_at_ms LIMIT ?2`,
  // The whole table, grouped: it holds what is waiting, which a healthy server keeps small.
  outboxStats: `SELECT endpoint, sum(dead = 0 AND attempts = 0) AS pending, sum(dead = 0 AND attempts > 0) AS retrying, sum(dead) AS dead,
      min(CASE WHEN dead = 0 THEN created_at_ms END) AS oldest FROM webhook_outbox GROUP BY endpoint`,
} as const;

/** The write of one delivery, for a batch (history.ts puts a message's into its own). */
export const insertOp = (row: OutboxRow, nowMs: number): WriteOp => [
  "insertOutbox",
  { event_id: row.eventId, endpoint: row.endpoint, type: row.type, body: row.body, created_at_ms: nowMs },
];

export class EmbeddedOutbox implements WebhookOutbox {
  private readonly q: Record<keyof typeof OUTBOX_SQL, Statement>;

  constructor(
    reader: Database,
    private readonly write: (ops: WriteOp[]) => Promise<void>,
  ) {
    this.q = Object.fromEntries(Object.entries(OUTBOX_SQL).map(([name, sql]) => [name, reader.prepare(sql)])) as Record<keyof typeof OUTBOX_SQL, Statement>;
  }

  async add(rows: OutboxRow[]): Promise<void> {
    if (rows.length) await this.write(rows.map((r) => insertOp(r, Date.now())));
  }

  async due(nowMs: number, limit: number): Promise<Delivery[]> {
    return (this.q.outboxDue.all(nowMs, limit) as Row[]).map(toDelivery);
  }

  async delivered(d: Delivery): Promise<void> {
    await this.write([["outboxDelivered", d.eventId, d.endpoint]]);
  }

  async failed(d: Delivery, nextAtMs: number | undefined, error: string): Promise<void> {
    // A dead letter's next_at_ms is never read: it is due only once redelivered, which sets it.
    await this.write([["outboxFailed", d.eventId, d.endpoint, nextAtMs ?? 0, nextAtMs === undefined ? 1 : 0, error.slice(0, 500)]]);
  }

  async deadLetters(endpoint: string, limit: number): Promise<Delivery[]> {
    return (this.q.outboxDead.all(endpoint, limit) as Row[]).map(toDelivery);
  }

  async redeliver(endpoint: string): Promise<number> {
    const n = (this.q.outboxDead.all(endpoint, Number.MAX_SAFE_INTEGER) as Row[]).length;
    await this.write([["outboxRedeliver", endpoint, Date.now()]]);
    return n;
  }

  async stats(): Promise<Map<string, { pending: number; retrying: number; dead: number; oldestMs: number | undefined }>> {
    const rows = this.q.outboxStats.all() as { endpoint: string; pending: bigint; retrying: bigint; dead: bigint; oldest: bigint | null }[];
    return new Map(
      rows.map((r) => [
        r.endpoint,
        { pending: Number(r.pending), retrying: Number(r.retrying), dead: Number(r.dead), oldestMs: r.oldest === null ? undefined : Number(r.oldest) },
      ]),
    );
  }
}

function toDelivery(r: Row): Delivery {
  return {
    eventId: r.event_id,
    endpoint: r.endpoint,
    type: r.type,
    body: r.body,
    createdAtMs: Number(r.created_at_ms),
    attempts: Number(r.attempts),
    lastError: r.last_error,
  };
}
