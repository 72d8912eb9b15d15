import { expect, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineContract } from "../contract.ts";
import { createLogger } from "../../log.ts";
import { createEmbeddedEngine } from "./index.ts";
import { deleteDraft, editDraft } from "../../../test/support/updates.ts";
import { filesContaining } from "../../../test/support/files.ts";
import { Database } from "bun:sqlite";
import { MIGRATIONS, SCHEMA } from "./schema.ts";

engineContract("embedded (in memory)", () => createEmbeddedEngine(":memory:"));
engineContract("embedded (file)", () => createEmbeddedEngine(mkdtempSync(join(tmpdir(), "edgechat-engine-"))));

test("history and seq survive reopening the data dir", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-reopen-"));
  const first = createEmbeddedEngine(dir);
  await first.history.append({ room: "r", from: "ann", text: "one", clientMsgId: "k1", region: "x" });
  await first.close();
  const second = createEmbeddedEngine(dir);
  const again = await second.history.append({ room: "r", from: "ann", text: "retry", clientMsgId: "k1", region: "x" });
  const next = await second.history.append({ room: "r", from: "ann", text: "two", clientMsgId: "", region: "x" });
  expect(again).toMatchObject({ duplicate: true });
  expect(again.message.text).toBe("one");
  expect(next.message.seq).toBe(2n);
  await second.close();
});

test("close() commits what was appended before it, on the writer thread, and refuses what comes after", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-close-"));
  const engine = createEmbeddedEngine(dir);
  const pending = Array.from({ length: 50 }, (_, i) => engine.history.append({ room: "r", from: "ann", text: `m${i}`, clientMsgId: "", region: "x" }));
  const member = engine.rooms.addMember("r", "ann");
  await engine.close();
  const acked = await Promise.all(pending);
  await member;
  expect(acked.map((a) => Number(a.message.seq))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  expect(engine.history.append({ room: "r", from: "ann", text: "late", clientMsgId: "", region: "x" })).rejects.toThrow("closed");
  const again = createEmbeddedEngine(dir);
  const page = await again.history.read("r", { afterSeq: 0n, limit: 100 });
  expect(page.messages.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  expect((await again.rooms.list("ann", "", 10)).rooms).toEqual([{ name: "r", members: 1, lastSeq: 50n }]);
  await again.close();
});

test("a row the writer thread cannot commit fails alone with Unavailable; its batch's other rows commit, gapless", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-fail-"));
  const engine = createEmbeddedEngine(dir);
  await engine.history.append({ room: "r", from: "ann", text: "one", clientMsgId: "", region: "x" });
  // A trigger (on another connection to the same file) makes SQLite abort any batch with "poison" in it.
  const { Database } = await import("bun:sqlite");
  const other = new Database(join(dir, "edgechat.db"));
  other.exec("CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
  other.close();
  const batch = ["two", "poison", "three"].map((text) => engine.history.append({ room: "r", from: "ann", text, clientMsgId: "", region: "x" }));
  const settled = await Promise.allSettled(batch);
  expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: Code.Unavailable });
  expect((settled[1] as PromiseRejectedResult).reason.message).toContain("poisoned");
  expect(await engine.history.lastSeq("r")).toBe(3n);
  const next = await engine.history.append({ room: "r", from: "ann", text: "after", clientMsgId: "", region: "x" });
  expect(next.message.seq).toBe(4n);
  const page = await engine.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text])).toEqual([
    [1n, "one"],
    [2n, "two"],
    [3n, "three"],
    [4n, "after"],
  ]);
  await engine.close();
});

test("a full store (EDGECHAT_DB_MAX_BYTES) is not ready and logs why; it is ready again once a write fits", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-full-"));
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("info", {}, (line) => lines.push(JSON.parse(line)));
  const engine = createEmbeddedEngine(dir, { maxBytes: 256 * 1024, log });
  const ready: boolean[] = [];
  engine.watchReady!((r) => ready.push(r));
  const big = "x".repeat(4000);
  let err: unknown;
  for (let i = 0; i < 200 && !err; i++) {
    err = await engine.history.append({ room: "r", from: "ann", text: big, clientMsgId: "", region: "x" }).then(
      () => undefined,
      (e) => e,
    );
  }
  expect(err).toMatchObject({ code: Code.Unavailable });
  expect((err as Error).message).toContain("database or disk is full");
  expect(ready).toEqual([true, false]);
  expect(lines.find((l) => l.level === "error")).toMatchObject({ msg: "history store cannot write; not ready until it can", code: "SQLITE_FULL" });
  // Reads go on; a smaller write still fits, and the store is ready again.
  expect((await engine.history.read("r", { limit: 1 })).messages.length).toBe(1);
  await engine.history.append({ room: "r", from: "ann", text: "small", clientMsgId: "", region: "x" });
  expect(ready).toEqual([true, false, true]);
  await engine.close();
});

test("a deleted message's text, and the text an edit replaced, are gone from the database file and its WAL", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-erase-"));
  const engine = createEmbeddedEngine(dir);
  const secret = `the launch code is ${crypto.randomUUID()}`;
  const long = `a long one, on overflow pages: ${crypto.randomUUID()} `.repeat(100);
  const first = `before the edit ${crypto.randomUUID()}`;
  await engine.history.append({ room: "r", from: "ann", text: secret, clientMsgId: "", region: "x" });
  await engine.history.append({ room: "r", from: "ann", text: long, clientMsgId: "", region: "x" });
  await engine.history.append({ room: "r", from: "ann", text: first, clientMsgId: "", region: "x" });
  await engine.history.append({ room: "r", from: "ann", text: "kept", clientMsgId: "", region: "x" });
  expect(filesContaining(dir, secret).length).toBeGreaterThan(0);
  await engine.history.update(editDraft("r", 3n, "after the edit"));
  for (const seq of [1n, 2n]) await engine.history.update(deleteDraft("r", seq));
  for (const text of [secret, long.slice(0, 60), first]) expect(filesContaining(dir, text)).toEqual([]);
  expect(filesContaining(dir, "kept").length).toBeGreaterThan(0);
  const page = await engine.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text, m.deleted])).toEqual([
    [1n, "", true],
    [2n, "", true],
    [3n, "after the edit", false],
    [4n, "kept", false],
    [5n, "", false],
    [6n, "", false],
    [7n, "", false],
  ]);
  await engine.close();
});

test("a data dir from before edits (user_version 3) is brought up to date: its messages read, retries still recognized, changes work", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-migrate-"));
  const old = new Database(join(dir, "edgechat.db"), { create: true });
  old.exec(SCHEMA);
  for (const m of MIGRATIONS.slice(0, 3)) old.exec(m);
  old.exec("PRAGMA user_version = 3");
  old.exec(
    "INSERT INTO messages (room, seq, id, sender, text, sent_at_ms, client_msg_id, region, change, reply_to) VALUES ('r', 1, 'id1', 'ann', 'from before', 1, 'k1', 'x', NULL, 0)",
  );
  old.exec("INSERT INTO rooms (name, last_seq) VALUES ('r', 1)");
  old.close();
  const engine = createEmbeddedEngine(dir);
  const again = await engine.history.append({ room: "r", from: "ann", text: "retry", clientMsgId: "k1", region: "x" });
  expect([again.duplicate, again.message.text]).toEqual([true, "from before"]);
  const edited = await engine.history.update(editDraft("r", 1n, "edited", "k1"));
  expect([edited.message.text, edited.message.version, edited.entry?.seq, edited.entry?.clientMsgId]).toEqual(["edited", 1n, 2n, "k1"]);
  const page = await engine.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text, m.version, m.deleted, m.reactions.length])).toEqual([
    [1n, "edited", 1n, false, 0],
    [2n, "", 0n, false, 0],
  ]);
  await engine.close();
});
