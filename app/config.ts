// Every setting comes from the environment; docs/configuration.md lists them with their defaults.
import type { Level } from "./log.ts";

export interface Limits {
  maxTextBytes: number;
  maxRoomsPerSession: number;
  /** Rooms one user may have created (CreateRoom) and not deleted: each is a record every instance holds. */
  maxRoomsPerUser: number;
  ratePerSecond: number;
  rateBurst: number;
  /** Joins and leaves on Chat, and Subscribe calls, per user. */
  joinRatePerSecond: number;
  joinBurst: number;
  /** History, ListRooms, ListOnline, GetRoom, ListMembers, ListBlocked and MarkRead calls per user. */
  readRatePerSecond: number;
  readBurst: number;
  maxRequestBytes: number;
  sessionQueue: number;
}

/** What one connection may hold on the public port (transport/connection-guard.ts). */
export interface ConnectionLimits {
  maxConnections: number;
  maxPerAddress: number;
  headersTimeoutSeconds: number;
  idleTimeoutSeconds: number;
  /** HTTP/2 streams one client address may open in 10 s. */
  maxStreamsPerAddress: number;
}

/** The NATS engine's settings (docs/regions.md); present only when EDGECHAT_NATS_URL is set. */
export interface NatsConfig {
  /** Comma-separated server URLs; credentials may ride in them (user:pass@ or token@). */
  servers: string;
  credsFile?: string;
  tlsCa?: string;
  /** Stream and bucket replicas; undefined: 3, or fewer if the cluster is smaller. */
  replicas?: number;
  maxAgeSeconds: number;
  /** Messages kept in the history stream; 0: no count limit. */
  maxMsgs: number;
}

export interface Config {
  host: string;
  port: number;
  /** host:port of the private metrics endpoint; "off" for none. */
  metricsAddr: string;
  region: string;
  dataDir: string;
  /** EDGECHAT_DB_MAX_BYTES: the embedded store's size limit; 0: none. */
  dbMaxBytes: number;
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  requireAuth: boolean;
  /** EDGECHAT_API_KEYS: the server API's keys, one `<name> <scopes> <sha256>` per line or per ";". */
  apiKeys?: string;
  /** EDGECHAT_API_KEYS_FILE: a file of more such lines. */
  apiKeysFile?: string;
  /** EDGECHAT_WEBHOOKS_FILE and the delivery settings (docs/webhooks.md). */
  webhooks: { file?: string; maxAttempts: number; retryMs: number; timeoutMs: number };
  /** EDGECHAT_FILTER_*: the message filter hook (docs/webhooks.md); no url, no hook. */
  filter: { url?: string; secret?: string; timeoutMs: number; failOpen: boolean };
  /** EDGECHAT_OPEN_ROOMS (default on): a room nobody created is made by first use; off, rooms exist once created. */
  openRooms: boolean;
  tlsCert?: string;
  tlsKey?: string;
  drainSeconds: number;
  heartbeatSeconds: number;
  logLevel: Level;
  limits: Limits;
  connections: ConnectionLimits;
  nats?: NatsConfig;
}

type Env = Record<string, string | undefined>;
const LEVELS: Level[] = ["debug", "info", "warn", "error"];

export function loadConfig(env: Env = process.env): Config {
  const int = (name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const str = (name: string) => (env[name] ? env[name] : undefined);
  /** One of `values`, the first the default. */
  const oneOf = (name: string, values: string[]) => {
    const raw = env[name] || values[0];
    if (!values.includes(raw)) throw new Error(`${name} must be one of ${values.join(", ")}, got "${raw}"`);
    return raw;
  };
  const logLevel = env.LOG_LEVEL || "info";
  if (!LEVELS.includes(logLevel as Level)) throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(", ")}, got "${logLevel}"`);
  if (env.EDGECHAT_JWT_SECRET && env.EDGECHAT_JWKS_URL) {
    throw new Error("set EDGECHAT_JWT_SECRET or EDGECHAT_JWKS_URL, not both");
  }
  if (Boolean(env.EDGECHAT_TLS_CERT) !== Boolean(env.EDGECHAT_TLS_KEY)) {
    throw new Error("TLS needs both EDGECHAT_TLS_CERT and EDGECHAT_TLS_KEY");
  }
  // A duration in seconds, or with a unit: "90s", "45m", "12h", "30d".
  const duration = (name: string, fallback: number) => {
    const raw = env[name];
    if (!raw) return fallback;
    const m = /^(\d+)([smhd]?)$/.exec(raw);
    if (!m || Number(m[1]) < 1) throw new Error(`${name} must be a duration like 3600, 90s, 45m, 12h or 30d, got "${raw}"`);
    return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  };
  const nats: NatsConfig | undefined = env.EDGECHAT_NATS_URL
    ? {
        servers: env.EDGECHAT_NATS_URL,
        credsFile: str("EDGECHAT_NATS_CREDS"),
        tlsCa: str("EDGECHAT_NATS_TLS_CA"),
        replicas: env.EDGECHAT_NATS_REPLICAS ? int("EDGECHAT_NATS_REPLICAS", 3, 1, 5) : undefined,
        maxAgeSeconds: duration("EDGECHAT_NATS_MAX_AGE", 30 * 86400),
        maxMsgs: int("EDGECHAT_NATS_MAX_MSGS", 0),
      }
    : undefined;
  return {
    host: env.EDGECHAT_HOST || "0.0.0.0",
    port: int("PORT", 8080, 0, 65535),
    metricsAddr: env.EDGECHAT_METRICS_ADDR || "127.0.0.1:2112",
    region: env.EDGECHAT_REGION || env.FLY_REGION || "local",
    dataDir: env.EDGECHAT_DATA_DIR || "./data",
    dbMaxBytes: int("EDGECHAT_DB_MAX_BYTES", 0),
    jwtSecret: str("EDGECHAT_JWT_SECRET"),
    jwksUrl: str("EDGECHAT_JWKS_URL"),
    jwtIssuer: str("EDGECHAT_JWT_ISSUER"),
    jwtAudience: str("EDGECHAT_JWT_AUDIENCE"),
    requireAuth: env.EDGECHAT_REQUIRE_AUTH === "1" || env.EDGECHAT_REQUIRE_AUTH === "true",
    apiKeys: str("EDGECHAT_API_KEYS"),
    apiKeysFile: str("EDGECHAT_API_KEYS_FILE"),
    filter: {
      url: str("EDGECHAT_FILTER_URL"),
      secret: str("EDGECHAT_FILTER_SECRET"),
      timeoutMs: int("EDGECHAT_FILTER_TIMEOUT_MS", 500, 1),
      failOpen: oneOf("EDGECHAT_FILTER_FAIL", ["closed", "open"]) === "open",
    },
    webhooks: {
      file: str("EDGECHAT_WEBHOOKS_FILE"),
      maxAttempts: int("EDGECHAT_WEBHOOK_MAX_ATTEMPTS", 10, 1),
      retryMs: int("EDGECHAT_WEBHOOK_RETRY_MS", 2000, 1),
      timeoutMs: int("EDGECHAT_WEBHOOK_TIMEOUT_MS", 10_000, 1),
    },
    openRooms: !(env.EDGECHAT_OPEN_ROOMS === "0" || env.EDGECHAT_OPEN_ROOMS === "false"),
    tlsCert: str("EDGECHAT_TLS_CERT"),
    tlsKey: str("EDGECHAT_TLS_KEY"),
    drainSeconds: int("EDGECHAT_DRAIN_SECONDS", 4),
    heartbeatSeconds: int("EDGECHAT_HEARTBEAT_SECONDS", 25, 1),
    logLevel: logLevel as Level,
    limits: {
      maxTextBytes: int("EDGECHAT_MAX_TEXT_BYTES", 4096, 1),
      maxRoomsPerSession: int("EDGECHAT_MAX_ROOMS_PER_SESSION", 128, 1),
      maxRoomsPerUser: int("EDGECHAT_MAX_ROOMS_PER_USER", 100, 0),
      ratePerSecond: int("EDGECHAT_RATE_PER_SECOND", 20, 0),
      rateBurst: int("EDGECHAT_RATE_BURST", 40, 1),
      joinRatePerSecond: int("EDGECHAT_JOIN_RATE_PER_SECOND", 10, 0),
      joinBurst: int("EDGECHAT_JOIN_BURST", 30, 1),
      readRatePerSecond: int("EDGECHAT_READ_RATE_PER_SECOND", 10, 0),
      readBurst: int("EDGECHAT_READ_BURST", 50, 1),
      maxRequestBytes: int("EDGECHAT_MAX_REQUEST_BYTES", 65536, 1024),
      sessionQueue: int("EDGECHAT_SESSION_QUEUE", 1000, 10),
    },
    connections: {
      maxConnections: int("EDGECHAT_MAX_CONNECTIONS", 10_000, 0),
      maxPerAddress: int("EDGECHAT_MAX_CONNECTIONS_PER_ADDRESS", 256, 0),
      headersTimeoutSeconds: int("EDGECHAT_HEADERS_TIMEOUT_SECONDS", 10, 1),
      idleTimeoutSeconds: int("EDGECHAT_IDLE_TIMEOUT_SECONDS", 300, 1),
      maxStreamsPerAddress: int("EDGECHAT_MAX_STREAMS_PER_ADDRESS", 5000, 0),
    },
    nats,
  };
}
