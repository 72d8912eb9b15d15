// The NATS engine: several regions share rooms through one NATS JetStream cluster (docs/regions.md).
// History in a replicated stream, live fan-out by the stream's republish, presence and the room
// directory in KV buckets. Selected by EDGECHAT_NATS_URL; it must pass contract.ts like the
// embedded engine. Creating it never blocks: it connects (and keeps trying) in the background and
// reports readiness through watchReady, so the server starts and says "not ready" meanwhile.
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { Engine } from "../engine.ts";
import { CachedAccess } from "../access.ts";
import { NatsBus } from "./bus.ts";
import { NatsDocs } from "./docs.ts";
import { Conn, connectOptions, unavailable } from "./conn.ts";
import { NatsHistory } from "./history.ts";
import { NatsPresence } from "./presence.ts";
import { NatsReadState } from "./read-state.ts";
import { NatsRooms } from "./rooms.ts";
import { NatsOutbox } from "./outbox.ts";
import { setup, type Io } from "./setup.ts";

export interface NatsTuning {
  /** How long a session outlives the last refresh by its instance (a crash, a partition). */
  presenceTtlMs: number;
  /** How often subscribed rooms are checked for a newest message that live delivery missed. */
  resyncMs: number;
}

export interface NatsEngine extends Engine {
  /** Resolves the first time the engine is ready. */
  ready(): Promise<void>;
}

export function createNatsEngine(config: Config, log: Logger, tuning: Partial<NatsTuning> = {}): NatsEngine {
  if (!config.nats) throw new Error("the NATS engine needs EDGECHAT_NATS_URL");
  const cfg = config.nats;
  const t: NatsTuning = { presenceTtlMs: 30_000, resyncMs: 5_000, ...tuning };
  const elog = log.child({ engine: "nats" });
  const conn = new Conn(connectOptions(cfg, config.region), elog);
  let io: Io | undefined;
  let closed = false;
  let loaded = false;
  const need = (): Io => {
    conn.need();
    if (!io) throw unavailable("NATS JetStream is not set up yet");
    return io;
  };

  const readState = new NatsReadState(need, conn);
  const rooms = new NatsRooms(
    need,
    conn,
    (room) => history.lastSeq(room),
    elog,
    (room) => readState.drop(room),
  );
  // A cached newest seq is trusted for at most a minute, and never near the stream's max age.
  const history: NatsHistory = new NatsHistory(need, conn, rooms, Math.min(60, cfg.maxAgeSeconds / 4) * 1000);
  const bus = new NatsBus(conn, history, elog, t.resyncMs);
  const presence = new NatsPresence(need, conn, t.presenceTtlMs, elog);
  const docs = new NatsDocs(() => need().access, conn, elog);
  const access = new CachedAccess(docs);
  // A room deleted in any region: this instance's newest-seq cache of it is wrong from now on.
  access.watch((room, now) => now === undefined && history.forget(room));

  const listeners = new Set<(ready: boolean) => void>();
  let reported = false;
  const report = () => {
    const now = !!io && loaded && conn.connected && !closed;
    if (now === reported) return;
    reported = now;
    for (const l of [...listeners]) l(now);
  };
  conn.onChange(report);

  void (async () => {
    const nc = await conn.open();
    for (let attempt = 0; nc && !closed; attempt++) {
      try {
        io = await setup(nc, cfg, t.presenceTtlMs, elog);
        // Ready only with every room record in memory: a private room must never look open.
        await access.start();
        loaded = true;
        elog.info("nats engine ready");
        report();
        return;
      } catch (err) {
        elog.error("nats JetStream setup failed; not ready, retrying", { err, attempt });
        await Bun.sleep(2_000);
      }
    }
  })();

  const outbox = new NatsOutbox(need, conn, elog);
  return {
    name: "nats",
    history,
    rooms,
    access,
    reads: readState,
    bus,
    presence,
    outbox,
    watchReady(listener) {
      listeners.add(listener);
      listener(reported);
      return () => listeners.delete(listener);
    },
    ready: () =>
      new Promise<void>((resolve) => {
        if (reported) return resolve();
        const l = (up: boolean) => up && (listeners.delete(l), resolve());
        listeners.add(l);
      }),
    async close() {
      if (closed) return;
      outbox.close();
      bus.close();
      presence.close();
      docs.stop();
      await history.close();
      if (io && conn.connected) await rooms.flush();
      closed = true;
      report();
      await conn.close();
    },
  };
}
