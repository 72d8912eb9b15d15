// The access store (engine.ts: AccessStore) of both engines: room records and blocks held in
// memory, over a small document store that each engine provides (a SQLite table, a NATS KV
// bucket). Every instance loads all documents at start and then follows every change, so the
// checks on the hot path never wait; writes compare the revision they read (optimistic locking)
// and go again on the newest document after a conflict.
import { Code, ConnectError } from "@connectrpc/connect";
import type { AccessStore, RoleName, RoomRecord } from "./engine.ts";

export type DocKind = "room" | "block" | "webhook";

/** Documents by (kind, id), each with a revision that grows with every write of it. */
export interface DocStore {
  /**
   * Calls `onChange` for every document there is, then for every change by any instance, in the
   * order of the writes; resolves once the existing documents were reported.
   */
  follow(onChange: (kind: DocKind, id: string, value: string | undefined, revision: number) => void): Promise<void>;
  /** The document as stored now (revision 0: none). */
  read(kind: DocKind, id: string): Promise<{ value: string | undefined; revision: number }>;
  /**
   * Stores `value` (undefined: deletes) if the document's revision is still `revision` (0: it does
   * not exist). Resolves the new revision, or false when another write came first.
   */
  write(kind: DocKind, id: string, value: string | undefined, revision: number): Promise<number | false>;
  /** Throws Unavailable while the store cannot serve. */
  check(): void;
}

const MAX_ATTEMPTS = 8;

interface Stored<T> {
  value: T;
  revision: number;
}

type Listener = (room: string, now: RoomRecord | undefined, before: RoomRecord | undefined) => void;

export class CachedAccess implements AccessStore {
  /** Deleted documents stay as revisions without a value, so that an older write seen late cannot bring them back. */
  private readonly rooms = new Map<string, Stored<RoomRecord | undefined>>();
  private readonly blocks = new Map<string, Stored<Set<string>>>();
  private readonly webhooks = new Map<string, Stored<string | undefined>>();
  private readonly webhookListeners = new Set<() => void>();
  private readonly listeners = new Set<Listener>();
  private loaded = false;
  /** Records per creator, kept with the records. */
  private readonly creators = new Map<string, number>();
  /** Writes of one document from this instance go one at a time: together they would only conflict. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private static readonly NONE: ReadonlySet<string> = new Set();

  constructor(private readonly docs: DocStore) {}

  /** Loads every document and follows the changes; the engine is not ready before it resolves. */
  async start(): Promise<void> {
    await this.docs.follow((kind, id, value, revision) => this.apply(kind, id, value, revision));
    this.loaded = true;
  }

  room(name: string): RoomRecord | undefined {
    if (!this.loaded) throw new ConnectError("room records are not loaded yet", Code.Unavailable);
    this.docs.check();
    return this.rooms.get(name)?.value;
  }

  createRoom(record: RoomRecord): Promise<boolean> {
    return this.serial(`room\0${record.name}`, () => this.create(record));
  }

  updateRoom(name: string, change: (current: RoomRecord) => RoomRecord): Promise<RoomRecord | undefined> {
    return this.serial(`room\0${name}`, () => this.update(name, change));
  }

  deleteRoom(name: string): Promise<boolean> {
    return this.serial(`room\0${name}`, () => this.delete(name));
  }

  setBlocked(user: string, other: string, blocked: boolean): Promise<void> {
    return this.serial(`block\0${user}`, () => this.block(user, other, blocked));
  }

  private serial<T>(key: string, op: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(key) ?? Promise.resolve()).catch(() => {}).then(op);
    this.queues.set(key, run);
    void run.catch(() => {}).finally(() => this.queues.get(key) === run && this.queues.delete(key));
    return run;
  }

  private async create(record: RoomRecord): Promise<boolean> {
    const value = encodeRoom(record);
    let have = this.rooms.get(record.name) ?? { value: undefined, revision: 0 };
    for (let attempt = 1; ; attempt++) {
      if (have.value) return false;
      const revision = await this.docs.write("room", record.name, value, have.revision);
      if (revision !== false) {
        this.apply("room", record.name, value, revision);
        return true;
      }
      if (attempt >= MAX_ATTEMPTS) throw busy(record.name);
      await backoff(attempt);
      have = await this.readRoom(record.name);
    }
  }

  private async update(name: string, change: (current: RoomRecord) => RoomRecord): Promise<RoomRecord | undefined> {
    let have = this.rooms.get(name);
    for (let attempt = 1; ; attempt++) {
      if (!have?.value) return undefined;
      // A copy, so that `change` may edit what it is given.
      const next = encodeRoom(change(decodeRoom(name, encodeRoom(have.value))));
      const revision = await this.docs.write("room", name, next, have.revision);
      if (revision !== false) return this.apply("room", name, next, revision) as RoomRecord;
      if (attempt >= MAX_ATTEMPTS) throw busy(name);
      await backoff(attempt);
      have = await this.readRoom(name);
    }
  }

  private async delete(name: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const have = attempt === 1 ? this.rooms.get(name) : await this.readRoom(name);
      if (!have?.value) return false;
      const revision = await this.docs.write("room", name, undefined, have.revision);
      if (revision !== false) {
        this.apply("room", name, undefined, revision);
        return true;
      }
      if (attempt >= MAX_ATTEMPTS) throw busy(name);
    }
  }

  createdBy(user: string): number {
    return this.creators.get(user) ?? 0;
  }

  blocked(user: string): ReadonlySet<string> {
    return this.blocks.get(user)?.value ?? CachedAccess.NONE;
  }

  private async block(user: string, other: string, blocked: boolean): Promise<void> {
    let have = this.blocks.get(user) ?? { value: new Set<string>(), revision: 0 };
    for (let attempt = 1; ; attempt++) {
      if (have.value.has(other) === blocked) return;
      const users = new Set(have.value);
      if (blocked) users.add(other);
      else users.delete(other);
      const value = users.size > 0 ? JSON.stringify([...users].sort()) : undefined;
      const revision = await this.docs.write("block", user, value, have.revision);
      if (revision !== false) {
        this.apply("block", user, value, revision);
        return;
      }
      if (attempt >= MAX_ATTEMPTS) throw new ConnectError("your block list is being changed elsewhere too: try again", Code.Aborted);
      const fresh = await this.docs.read("block", user);
      have = { value: new Set(fresh.value === undefined ? [] : (JSON.parse(fresh.value) as string[])), revision: fresh.revision };
    }
  }

  webhookEndpoints(): ReadonlyMap<string, string> {
    return new Map([...this.webhooks].flatMap(([id, s]) => (s.value === undefined ? [] : [[id, s.value] as [string, string]])));
  }

  setWebhookEndpoint(id: string, value: string | undefined): Promise<boolean> {
    return this.serial(`webhook\0${id}`, async () => {
      let have = this.webhooks.get(id) ?? { value: undefined, revision: 0 };
      for (let attempt = 1; ; attempt++) {
        // Create: only where there is none; delete: only where there is one.
        if ((value === undefined) === (have.value === undefined)) return false;
        const revision = await this.docs.write("webhook", id, value, have.revision);
        if (revision !== false) {
          this.apply("webhook", id, value, revision);
          return true;
        }
        if (attempt >= MAX_ATTEMPTS) throw new ConnectError(`webhook endpoint "${id}" is being changed elsewhere too: try again`, Code.Aborted);
        await backoff(attempt);
        have = await this.docs.read("webhook", id);
      }
    });
  }

  watchWebhookEndpoints(listener: () => void): () => void {
    this.webhookListeners.add(listener);
    return () => this.webhookListeners.delete(listener);
  }

  watch(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private count(user: string | undefined, by: number): void {
    if (!user) return;
    const n = (this.creators.get(user) ?? 0) + by;
    if (n > 0) this.creators.set(user, n);
    else this.creators.delete(user);
  }

  private async readRoom(name: string): Promise<Stored<RoomRecord | undefined>> {
    const fresh = await this.docs.read("room", name);
    return { value: fresh.value === undefined ? undefined : decodeRoom(name, fresh.value), revision: fresh.revision };
  }

  /**
   * A document as stored at `revision`, from this instance's own write or from following the
   * store: whichever comes second is older or the same, and changes nothing.
   */
  private apply(kind: DocKind, id: string, value: string | undefined, revision: number): RoomRecord | undefined {
    if (kind === "webhook") {
      const had = this.webhooks.get(id);
      if (had && had.revision >= revision) return;
      this.webhooks.set(id, { value, revision });
      for (const l of this.webhookListeners) l();
      return;
    }
    if (kind === "block") {
      const had = this.blocks.get(id);
      if (had && had.revision >= revision) return;
      if (value === undefined) this.blocks.delete(id);
      else this.blocks.set(id, { value: new Set(JSON.parse(value) as string[]), revision });
      return;
    }
    const had = this.rooms.get(id);
    if (had && had.revision >= revision) return had.value;
    const now = value === undefined ? undefined : decodeRoom(id, value);
    this.rooms.set(id, { value: now, revision });
    this.count(had?.value?.createdBy, -1);
    this.count(now?.createdBy, 1);
    if (now || had?.value) for (const l of this.listeners) l(id, now, had?.value);
    return now;
  }
}

/** Another instance wrote the same document: wait a little, more each time, before reading it again. */
const backoff = (attempt: number) => Bun.sleep(Math.random() * Math.min(200, 10 * 2 ** attempt));

const busy = (room: string) => new ConnectError(`room "${room}" is being changed by others at the same time: try again`, Code.Aborted);

/** A record as stored: maps as arrays of pairs, since user ids such as "__proto__" are valid. */
interface RoomDoc {
  kind: RoomRecord["kind"];
  title: string;
  topic: string;
  createdBy: string;
  createdAtMs: number;
  roles: [string, RoleName][];
  bans: [string, { untilMs: number; reason: string; by: string }][];
  mutes: [string, { untilMs: number; by: string }][];
}

export function encodeRoom(r: RoomRecord): string {
  const doc: RoomDoc = {
    kind: r.kind,
    title: r.title,
    topic: r.topic,
    createdBy: r.createdBy,
    createdAtMs: r.createdAtMs,
    roles: [...r.roles],
    bans: [...r.bans],
    mutes: [...r.mutes],
  };
  return JSON.stringify(doc);
}

export function decodeRoom(name: string, value: string): RoomRecord {
  const d = JSON.parse(value) as RoomDoc;
  return {
    name,
    kind: d.kind,
    title: d.title,
    topic: d.topic,
    createdBy: d.createdBy,
    createdAtMs: d.createdAtMs,
    roles: new Map(d.roles),
    bans: new Map(d.bans),
    mutes: new Map(d.mutes),
  };
}
