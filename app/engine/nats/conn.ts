// The engine's one NATS connection: connect options from the config, a first-connect loop that
// never gives up (the server starts and reports not-ready instead), and a live "connected" state
// so that writes can fail fast during an outage instead of queueing in the client.
import { credsAuthenticator, type NatsConnection, type ConnectionOptions } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import type { NatsConfig } from "../../config.ts";
import type { Logger } from "../../log.ts";

/** Servers without credentials, and the credentials found in their URLs (the first one wins). */
export function connectOptions(cfg: NatsConfig, region: string): ConnectionOptions {
  const opts: ConnectionOptions = {
    name: `edgechat-${region}`,
    servers: [],
    // Never give up: the client walks the server list until one answers (subscriptions are
    // re-established by the client itself on every reconnect).
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // In list order: an instance names its own region's server first, the others as fallbacks.
    noRandomize: true,
    // Notice a dead server within seconds, not after the OS's TCP timeout.
    pingInterval: 5_000,
    maxPingOut: 2,
    timeout: 3_000,
  };
  const servers: string[] = [];
  // "{region}" is this instance's region: one setting for every region, its own node first
  // (nats://{region}.my-nats.internal:4222,nats://my-nats.internal:4222 on Fly).
  for (const raw of cfg.servers
    .replaceAll("{region}", region)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const url = new URL(raw.includes("://") ? raw : `nats://${raw}`);
    if (url.username && !opts.user && !opts.token) {
      if (url.password) [opts.user, opts.pass] = [decodeURIComponent(url.username), decodeURIComponent(url.password)];
      else opts.token = decodeURIComponent(url.username);
    }
    if (url.protocol === "tls:") opts.tls = {};
    servers.push(`${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}:${url.port || 4222}`);
  }
  opts.servers = servers;
  if (cfg.credsFile) opts.authenticator = credsAuthenticator(readFileSync(cfg.credsFile));
  if (cfg.tlsCa) opts.tls = { ...opts.tls, caFile: cfg.tlsCa };
  return opts;
}

export class Conn {
  nc: NatsConnection | undefined;
  private up = false;
  private closed = false;
  private lost: { promise: Promise<never>; reject: (e: Error) => void } = pending();
  private readonly listeners = new Set<(up: boolean) => void>();

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly log: Logger,
  ) {}

  /** Connects, retrying with backoff until it works or close() is called. */
  async open(): Promise<NatsConnection | undefined> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const nc = await connect(this.opts);
        if (this.closed) {
          await nc.close();
          return undefined;
        }
        this.nc = nc;
        void this.watch(nc);
        this.log.info("nats connected", { server: nc.getServer(), cluster: nc.info?.cluster ?? "none", version: nc.info?.version });
        return nc;
      } catch (err) {
        // The reason (refused, auth, TLS) is what an operator needs; it is logged every time.
        this.log.error("nats unreachable; not ready, retrying", { servers: this.opts.servers, err, attempt });
        await Bun.sleep(Math.min(5_000, 500 * 2 ** Math.min(attempt, 4)));
      }
    }
    return undefined;
  }

  /** True while the client has a live connection. */
  get connected(): boolean {
    return this.up && !!this.nc && !this.nc.isClosed();
  }

  /** The connection, or a fast Unavailable: nothing is queued in the client during an outage. */
  need(): NatsConnection {
    if (!this.connected) throw unavailable("the NATS connection is down");
    return this.nc!;
  }

  /** Settles `p`, or rejects with Unavailable as soon as the connection drops, whichever is first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost.promise]);
  }

  /** `race`, with any failure (a timeout, a leader election) as the Unavailable the core expects. */
  async call<T>(p: Promise<T>, what: string): Promise<T> {
    try {
      return await this.race(p);
    } catch (err) {
      throw err instanceof ConnectError ? err : unavailable(`${what} failed (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /**
   * `call` for an idempotent operation, tried again while the connection is up: a stream whose
   * leader died has none for a few seconds (about 5 on nats-server 2.9), and its writes get no
   * responders or time out meanwhile. Gives up with Unavailable after `deadlineMs`.
   */
  async retry<T>(op: () => Promise<T>, what: string, deadlineMs = 6_000): Promise<T> {
    const until = Date.now() + deadlineMs;
    for (let wait = 100; ; wait = Math.min(1_000, wait * 2)) {
      try {
        return await this.call(op(), what);
      } catch (err) {
        if (!this.connected || Date.now() + wait > until) throw err;
        await Bun.sleep(wait);
      }
    }
  }

  onChange(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.set(false);
    await this.nc?.drain().catch(() => this.nc?.close());
  }

  private set(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (up) this.lost = pending();
    else this.lost.reject(unavailable("the NATS connection was lost"));
    for (const l of [...this.listeners]) l(up);
  }

  private async watch(nc: NatsConnection): Promise<void> {
    this.set(true);
    void nc.closed().then(() => this.set(false));
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.log.warn("nats disconnected; reconnecting", { server: s.server });
        this.set(false);
      } else if (s.type === "reconnect") {
        this.log.info("nats reconnected", { server: s.server });
        this.set(true);
      }
    }
  }
}

export function unavailable(why: string): ConnectError {
  return new ConnectError(`${why}; retry (with the same client_msg_id)`, Code.Unavailable);
}

function pending(): { promise: Promise<never>; reject: (e: Error) => void } {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => {});
  return { promise, reject };
}
