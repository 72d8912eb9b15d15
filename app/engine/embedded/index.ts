import { join } from "node:path";
import type { Engine } from "../engine.ts";
import { MemoryBus } from "./memory-bus.ts";
import { MemoryPresence } from "./memory-presence.ts";
import { SqliteHistory } from "./sqlite-history.ts";

/** One region on its own: history in SQLite under dataDir (":memory:" for none), the rest in memory. */
export function createEmbeddedEngine(dataDir: string): Engine {
  const store = new SqliteHistory(dataDir === ":memory:" ? ":memory:" : join(dataDir, "edgechat.db"));
  return {
    name: "embedded",
    history: store,
    rooms: store,
    bus: new MemoryBus(),
    presence: new MemoryPresence(),
    close: () => store.close(),
  };
}
