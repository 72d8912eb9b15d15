import { expect, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineContract } from "../contract.ts";
import { createEmbeddedEngine } from "./index.ts";

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
  expect(await again.rooms.list("ann")).toEqual([{ name: "r", members: 1, lastSeq: 50n }]);
  await again.close();
});

test("a batch the writer thread cannot commit is rejected whole with Unavailable, and takes no seq", async () => {
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
  for (const s of settled) {
    expect(s.status).toBe("rejected");
    expect((s as PromiseRejectedResult).reason).toMatchObject({ code: Code.Unavailable });
  }
  expect(await engine.history.lastSeq("r")).toBe(1n);
  const next = await engine.history.append({ room: "r", from: "ann", text: "after", clientMsgId: "", region: "x" });
  expect(next.message.seq).toBe(2n);
  const page = await engine.history.read("r", { afterSeq: 0n, limit: 10 });
  expect(page.messages.map((m) => [m.seq, m.text])).toEqual([[1n, "one"], [2n, "after"]]);
  await engine.close();
});
