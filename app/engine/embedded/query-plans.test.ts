// Every statement of the embedded store uses an index for what grows: a room's messages, the
// rooms, a room's members. A full scan would make a Send, a join or a listing cost more as the
// store grows, on the event loop (issue: the client_msg_id lookup once read a room's whole history).
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { MIGRATIONS, SCHEMA } from "./schema.ts";
import { READ_SQL } from "./history.ts";
import { WRITE_SQL } from "./sqlite-writer.ts";
import { OUTBOX_SQL } from "./outbox.ts";

const db = new Database(":memory:");
db.exec(SCHEMA);
for (const m of MIGRATIONS) db.exec(m);

function plan(sql: string): string[] {
  // Named ($room) parameters need their names bound; EXPLAIN QUERY PLAN runs nothing either way.
  const named = /\$\w+/.test(sql) ? Object.fromEntries([...sql.matchAll(/\$(\w+)/g)].map((m) => [m[1], null])) : undefined;
  const q = db.query(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (named ? q.all(named as never) : q.all(...(Array(q.paramsCount).fill(null) as never[]))) as { detail: string }[];
  return rows.map((r) => r.detail);
}

// A whole table, or a whole room's messages.
const growing = /^SCAN (messages|rooms|members|r|m|u)\b|^SEARCH messages USING PRIMARY KEY \(room=\?\)$/;

// DeleteRoom removes a room's messages: all of one room, which is what it is for.
const WHOLE_ROOM = new Set(["deleteMessages"]);

// The outbox's statistics read the table whole, grouped: it holds only what is waiting.
const SMALL_TABLE = new Set(["outboxStats"]);
for (const [name, sql] of Object.entries({ ...READ_SQL, ...WRITE_SQL, ...OUTBOX_SQL })) {
  if (SMALL_TABLE.has(name)) continue;
  test(`${name} reads no table whole`, () => {
    const details = plan(sql);
    const allowed = (d: string) => WHOLE_ROOM.has(name) && d === "SEARCH messages USING PRIMARY KEY (room=?)";
    expect(details.filter((d) => growing.test(d) && !allowed(d))).toEqual([]);
  });
}

test("the client_msg_id lookup of every Send with one uses the partial unique index", () => {
  expect(plan(READ_SQL.byClientId).join("\n")).toContain("USING INDEX messages_client_msg_id");
});

test("a retried change finds its entry by the index of update keys", () => {
  expect(plan(READ_SQL.byUpdateKey).join("\n")).toContain("USING INDEX messages_update_key");
});

test("listing rooms reads by name ranges and by the caller's memberships", () => {
  const details = plan(READ_SQL.listRooms).join("\n");
  expect(details).toContain("USING PRIMARY KEY (name>? AND name<?)");
  expect(details).toContain("USING COVERING INDEX members_by_user");
});

test("each migration reads no table whole except the one-off cleanups it is for", () => {
  // The migrations run once per data dir; they are listed here so that a new one is looked at.
  // 1: the cleanup of rooms without messages. 2, 3: ALTER TABLE ADD COLUMN, which rewrites no row.
  // 4: five more columns, and the client_msg_id indexes made again (one read of the table, once).
  // 5: the webhook outbox, a new table.
  expect(MIGRATIONS).toHaveLength(5);
});
