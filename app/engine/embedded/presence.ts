// Presence for one instance: nothing outlives the process, so there is nothing to expire.
import type { OnlineEntry, PresenceStore } from "../engine.ts";

interface UserEntry {
  region: string;
  /** One session id (most users have one), or the set of them. */
  sessions: string | Set<string>;
}

const count = (e: UserEntry) => (typeof e.sessions === "string" ? 1 : e.sessions.size);

export class MemoryPresence implements PresenceStore {
  private readonly scopes = new Map<string, Map<string, UserEntry>>();

  async enter(scope: string, user: string, sessionId: string, region: string): Promise<boolean> {
    let users = this.scopes.get(scope);
    if (!users) this.scopes.set(scope, (users = new Map()));
    const entry = users.get(user);
    if (!entry) {
      users.set(user, { region, sessions: sessionId });
      return true;
    }
    if (typeof entry.sessions === "string") entry.sessions = new Set([entry.sessions]);
    entry.sessions.add(sessionId);
    return false;
  }

  async leave(scope: string, user: string, sessionId: string): Promise<boolean> {
    const users = this.scopes.get(scope);
    const entry = users?.get(user);
    if (!users || !entry) return false;
    if (typeof entry.sessions === "string") {
      if (entry.sessions !== sessionId) return false;
    } else if (!entry.sessions.delete(sessionId) || entry.sessions.size > 0) return false;
    users.delete(user);
    if (users.size === 0) this.scopes.delete(scope);
    return true;
  }

  async online(scope: string): Promise<OnlineEntry[]> {
    const users = this.scopes.get(scope);
    if (!users) return [];
    return [...users].map(([user, e]) => ({ user, region: e.region, sessions: count(e) }));
  }
}
