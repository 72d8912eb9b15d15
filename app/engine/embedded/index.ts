import { join } from "node:path";
import type { Engine } from "../engine.ts";
import { CachedAccess } from "../access.ts";
import { MemoryBus } from "./bus.ts";
import { SqliteDocs } from "./docs.ts";
import { MemoryPresence } from "./presence.ts";
import { SqliteHistory, type StoreOptions } from "./history.ts";
import { EmbeddedOutbox } from "./outbox.ts";

/** One region on its own: history in SQLite under dataDir (":memory:" for none), the rest in memory. */
export function createEmbeddedEngine(dataDir: string, opts: StoreOptions = {}): Engine {
  const store = new SqliteHistory(dataDir === ":memory:" ? ":memory:" : join(dataDir, "edgechat.db"), opts);
  const access = new CachedAccess(new SqliteDocs(store.reader, (ops) => store.write(ops)));
  // SQLite reads the documents synchronously: they are all in memory when this returns.
  void access.start();
  return {
    name: "embedded",
    history: store,
    rooms: store,
    access,
    reads: { get: (user, rooms) => store.readState(user, rooms), raise: (user, room, seq) => store.raiseRead(user, room, seq) },
    bus: new MemoryBus(),
    presence: new MemoryPresence(),
    outbox: new EmbeddedOutbox(store.reader, (ops) => store.write(ops)),
    // Ready while the store takes writes: an instance whose disk is full is taken out of rotation.
    watchReady: (listener) => store.watchWritable(listener),
    close: () => store.close(),
  };
}
