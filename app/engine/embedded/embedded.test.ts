import { expect, test } from "bun:test";
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
