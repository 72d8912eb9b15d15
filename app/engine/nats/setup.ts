// The JetStream objects the engine needs, created or brought up to date at connect time by every
// instance (idempotent, so no separate migration step): the history stream and four KV buckets.
// Everything used here exists in nats-server 2.9: allow_direct (2.9.0), republish (2.8.3),
// Nats-Expected-Last-Subject-Sequence and duplicate_window, KV buckets with a TTL.
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import type { NatsConfig } from "../../config.ts";
import type { Logger } from "../../log.ts";
import { ACCESS_BUCKET, PRESENCE_BUCKET, READ_STATE_BUCKET, ROOMS_BUCKET, STREAM } from "./names.ts";

/** How long a retried client_msg_id is recognized, across regions: JetStream's duplicate window. */
export const DEDUPE_WINDOW_SECONDS = 3600;

export interface Io {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  rooms: KV;
  presence: KV;
  /** Room records and blocks (docs.ts): no TTL, every instance follows all of it. */
  access: KV;
  /** Each user's last-read seq per room (read-state.ts). */
  readState: KV;
  /** The replicas the streams were made with (the webhook outbox makes its own the same). */
  replicas: number;
}

export async function setup(nc: NatsConnection, cfg: NatsConfig, presenceTtlMs: number, log: Logger): Promise<Io> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const replicas = chooseReplicas(nc, cfg, log);
  await ensureStream(jsm, streamConfig(cfg, replicas), cfg.replicas === undefined, log);
  const kvm = new Kvm(js);
  const rooms = await kvm.create(ROOMS_BUCKET, { history: 1, replicas });
  // Presence entries live TTL after their last refresh: a crashed instance's sessions expire.
  const presence = await kvm.create(PRESENCE_BUCKET, { history: 1, replicas, ttl: presenceTtlMs });
  const access = await kvm.create(ACCESS_BUCKET, { history: 1, replicas });
  const readState = await kvm.create(READ_STATE_BUCKET, { history: 1, replicas });
  return { nc, js, jsm, rooms, presence, access, readState, replicas };
}

export function streamConfig(cfg: NatsConfig, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: STREAM,
    subjects: ["edgechat.room.*.*"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    max_age: nanos(cfg.maxAgeSeconds * 1000),
    max_msgs: cfg.maxMsgs > 0 ? cfg.maxMsgs : -1,
    duplicate_window: nanos(Math.min(DEDUPE_WINDOW_SECONDS, cfg.maxAgeSeconds) * 1000),
    // Reads go to the nearest replica instead of the stream leader, which may be in another region.
    allow_direct: true,
    // Every stored message is republished on edgechat.live.<room>.<seq>: what instances take, so
    // a publish refused by the expected-sequence check never reaches anyone.
    republish: { src: "edgechat.room.>", dest: "edgechat.live.>" },
  };
}

/** The configured replicas (default 3), no more than the servers the cluster advertises. */
function chooseReplicas(nc: NatsConnection, cfg: NatsConfig, log: Logger): number {
  const servers = nc.info?.cluster ? nc.info.connect_urls?.length || 3 : 1;
  const want = cfg.replicas ?? 3;
  if (cfg.replicas !== undefined && want > servers) log.warn("EDGECHAT_NATS_REPLICAS is more than the cluster's servers", { replicas: want, servers });
  return Math.max(1, Math.min(want, servers));
}

async function ensureStream(jsm: JetStreamManager, want: Partial<StreamConfig> & { name: string }, defaultReplicas: boolean, log: Logger): Promise<void> {
  const info = await jsm.streams.info(STREAM).catch((err) => {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null;
    throw err;
  });
  if (!info) {
    // Another instance may create it at the same moment; identical configs make that a no-op.
    await jsm.streams.add(want).catch(async (err) => {
      if (!(await jsm.streams.info(STREAM).catch(() => null))) throw err;
    });
    log.info("nats stream created", { stream: STREAM, replicas: want.num_replicas });
    return;
  }
  const have = info.config;
  // A server missing at boot must not shrink a stream that an earlier, fuller boot sized.
  if (defaultReplicas && have.num_replicas > want.num_replicas!) want.num_replicas = have.num_replicas;
  const keys = ["subjects", "num_replicas", "max_age", "max_msgs", "duplicate_window", "allow_direct", "republish"] as const;
  const norm = (c: Partial<StreamConfig>, k: (typeof keys)[number]) =>
    JSON.stringify(k === "republish" ? [c.republish?.src, c.republish?.dest] : (c[k] ?? null));
  const differs = keys.filter((k) => norm(have, k) !== norm(want, k));
  if (differs.length === 0) return;
  await jsm.streams.update(STREAM, { ...have, ...want });
  log.info("nats stream updated", { stream: STREAM, changed: differs });
}
