// The embedded store's schema. Tables are created if missing; PRAGMA user_version counts the
// migrations a data dir has had.
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  sender TEXT NOT NULL,
  text TEXT NOT NULL,
  sent_at_ms INTEGER NOT NULL,
  client_msg_id TEXT NOT NULL,
  region TEXT NOT NULL,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_client_msg_id
  ON messages (room, sender, client_msg_id) WHERE client_msg_id <> '';
CREATE TABLE IF NOT EXISTS rooms (
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  room TEXT NOT NULL,
  user TEXT NOT NULL,
  PRIMARY KEY (room, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user, room);
CREATE TABLE IF NOT EXISTS docs (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  value TEXT NOT NULL,
  revision INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_state (
  user TEXT NOT NULL,
  room TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (user, room)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS read_state_by_room ON read_state (room);
CREATE TABLE IF NOT EXISTS write_probe (
  id INTEGER PRIMARY KEY,
  pad BLOB
);
`;

/** What an older data dir needs, in order: MIGRATIONS[i] takes user_version i to i + 1. */
export const MIGRATIONS = [
  // Joining a room used to store it: rooms without a message were made by subscriptions alone
  // (a client could make thousands a second). A room now exists once it has a message.
  `DELETE FROM members WHERE room IN (SELECT name FROM rooms WHERE last_seq = 0);
   DELETE FROM rooms WHERE last_seq = 0;`,
  // Entries that record a change to a room (who may do what) instead of a message: the change as
  // protobuf JSON, NULL for a message. A migration, not in SCHEMA, so that old and new files get it.
  "ALTER TABLE messages ADD COLUMN change TEXT",
  // Replies: the seq of the message of the same room that a message answers, 0 for none.
  "ALTER TABLE messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0",
  // Messages that change: edits, deletes (tombstones), reactions (JSON: [{emoji, users}]), a
  // version per change, and the entries that record each change (a MessageUpdate as protobuf JSON,
  // NULL for everything else). A send's client_msg_id stays unique; an update's is looked up by
  // an index of its own, since one key names one request (the same key for another message is
  // another request).
  `ALTER TABLE messages ADD COLUMN edited_at_ms INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE messages ADD COLUMN reactions TEXT;
   ALTER TABLE messages ADD COLUMN update_json TEXT;
   DROP INDEX messages_client_msg_id;
   CREATE UNIQUE INDEX messages_client_msg_id ON messages (room, sender, client_msg_id) WHERE client_msg_id <> '' AND update_json IS NULL;
   CREATE INDEX messages_update_key ON messages (room, sender, client_msg_id) WHERE client_msg_id <> '' AND update_json IS NOT NULL;`,
  // Webhook deliveries waiting to be made (engine.ts WebhookOutbox): written with the entry that
  // makes them, gone once delivered; a dead letter stays until redelivered.
  `CREATE TABLE webhook_outbox (
     event_id TEXT NOT NULL,
     endpoint TEXT NOT NULL,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     created_at_ms INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at_ms INTEGER NOT NULL,
     dead INTEGER NOT NULL DEFAULT 0,
     last_error TEXT NOT NULL DEFAULT '',
     PRIMARY KEY (event_id, endpoint)
   ) WITHOUT ROWID;
   CREATE INDEX webhook_outbox_due ON webhook_outbox (dead, next_at_ms);`,
];
