// Presence in a KV bucket whose entries expire TTL after their last write. One key per session
// per scope, <scope>.<user>.<region>.<session> (each part a token, names.ts): the region sits in
// the key, so that ListOnline is one key listing, without reading values. The owning instance
// rewrites its keys every TTL/3; when it crashes they stop being rewritten and expire.
//
// first/last across regions: enter lists the user's other keys before writing its own, leave
// deletes its own before listing. Two sessions racing in two regions may then both report
// "first" (or both "last"): a repeated joined/left event, never a missing one.
import type { OnlineEntry, PresenceStore } from "../engine.ts";
import type { Logger } from "../../log.ts";
import { token, untoken } from "./names.ts";
import type { Conn } from "./conn.ts";
import type { Io } from "./setup.ts";

export class NatsPresence implements PresenceStore {
  /** This instance's sessions: "<scope>\0<user>\0<session>" -> key. */
  private readonly mine = new Map<string, string>();
  /** This instance's sessions per "<scope>\0<user>". */
  private readonly local = new Map<string, number>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly io: () => Io,
    private readonly conn: Conn,
    ttlMs: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.refresh(), Math.max(100, ttlMs / 3));
    this.timer.unref?.();
  }

  async enter(scope: string, user: string, sessionId: string, region: string): Promise<boolean> {
    const { presence } = this.io();
    const key = `${token(scope)}.${token(user)}.${token(region)}.${token(sessionId)}`;
    const id = `${scope}\0${user}\0${sessionId}`;
    if (this.mine.has(id)) return false;
    // Another session of the user here, in this scope: not the first, no need to ask.
    const local = this.local.has(`${scope}\0${user}`);
    const first = local
      ? false
      : await this.degrade(
          this.others(scope, user, key).then((n) => n === 0),
          true,
          "presence lookup",
        );
    this.track(scope, user, id, key);
    // Not written (a bucket changing leader): the refresh writes it, a TTL/3 later.
    await this.degrade(this.conn.call(presence.put(key, ""), "presence write"), undefined, "presence write").catch((err) => {
      this.untrack(scope, user, id);
      throw err;
    });
    return first;
  }

  async leave(scope: string, user: string, sessionId: string): Promise<boolean> {
    const id = `${scope}\0${user}\0${sessionId}`;
    const key = this.mine.get(id);
    if (!key) return false;
    // Forgotten first: even if the delete fails, the refresh no longer keeps it alive and it expires.
    this.untrack(scope, user, id);
    try {
      await this.conn.call(this.io().presence.delete(key), "presence delete");
    } catch (err) {
      this.log.warn("presence delete failed; the entry expires on its own", { err });
    }
    if (this.local.has(`${scope}\0${user}`)) return false;
    return this.others(scope, user, key).then(
      (n) => n === 0,
      () => true,
    );
  }

  async online(scope: string): Promise<OnlineEntry[]> {
    const users = new Map<string, OnlineEntry>();
    const keys = await this.conn.call(this.io().presence.keys(`${token(scope)}.>`), "presence listing");
    for await (const key of keys) {
      const [, u, r] = key.split(".");
      const user = untoken(u);
      const entry = users.get(user);
      if (entry) entry.sessions++;
      else users.set(user, { user, region: untoken(r), sessions: 1 });
    }
    return [...users.values()];
  }

  close(): void {
    clearInterval(this.timer);
  }

  private track(scope: string, user: string, id: string, key: string): void {
    this.mine.set(id, key);
    const su = `${scope}\0${user}`;
    this.local.set(su, (this.local.get(su) ?? 0) + 1);
  }

  private untrack(scope: string, user: string, id: string): void {
    if (!this.mine.delete(id)) return;
    const su = `${scope}\0${user}`;
    const n = (this.local.get(su) ?? 1) - 1;
    if (n > 0) this.local.set(su, n);
    else this.local.delete(su);
  }

  /** How many keys the user has in the scope, in any region, besides `key`. */
  private async others(scope: string, user: string, key: string): Promise<number> {
    let n = 0;
    const keys = await this.conn.call(this.io().presence.keys(`${token(scope)}.${token(user)}.>`), "presence lookup");
    for await (const k of keys) if (k !== key) n++;
    return n;
  }

  /**
   * Presence is a hint, and must not stop chat while its bucket elects a leader: a failure with the
   * connection up is logged and answered with `fallback`. Without a connection it stays an error.
   */
  private async degrade<T>(p: Promise<T>, fallback: T, what: string): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (!this.conn.connected) throw err;
      this.log.warn(`${what} failed; going on without it`, { err });
      return fallback;
    }
  }

  /** Rewrites every key of this instance, so that they outlive the TTL while we do. */
  private async refresh(): Promise<void> {
    let io: Io;
    try {
      io = this.io();
    } catch {
      return; // Not connected: the keys are rewritten at the first refresh after reconnecting.
    }
    const failed = (await Promise.allSettled([...this.mine.values()].map((k) => io.presence.put(k, "")))).filter((r) => r.status === "rejected");
    if (failed.length > 0) this.log.warn("presence refresh failed", { failed: failed.length, err: (failed[0] as PromiseRejectedResult).reason });
  }
}
