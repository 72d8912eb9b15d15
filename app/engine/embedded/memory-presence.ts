// Presence for one instance: nothing outlives the process, so there is nothing to expire.
import type { OnlineEntry, PresenceStore } from "../engine.ts";

interface UserEntry {
  region: string;
  sessions: Set<string>;
}

export class MemoryPresence implements PresenceStore {
  private readonly scopes = new Map<string, Map<string, UserEntry>>();

  async enter(scope: string, user: string, sessionId: string, region: string): Promise<boolean> {
    let users = this.scopes.get(scope);
    if (!users) this.scopes.set(scope, (users = new Map()));
    let entry = users.get(user);
    if (!entry) users.set(user, (entry = { region, sessions: new Set() }));
    const first = entry.sessions.size === 0;
    entry.sessions.add(sessionId);
    return first;
  }

  async leave(scope: string, user: string, sessionId: string): Promise<boolean> {
    const users = this.scopes.get(scope);
    const entry = users?.get(user);
    if (!users || !entry || !entry.sessions.delete(sessionId)) return false;
    if (entry.sessions.size > 0) return false;
    users.delete(user);
    if (users.size === 0) this.scopes.delete(scope);
    return true;
  }

  async online(scope: string): Promise<OnlineEntry[]> {
    const users = this.scopes.get(scope);
    if (!users) return [];
    return [...users].map(([user, e]) => ({ user, region: e.region, sessions: e.sessions.size }));
  }
}
