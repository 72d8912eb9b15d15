import type { RoomDirectory, RoomPage } from "../engine.ts";
import type { Logger } from "../../log.ts";
import type { SeqFloor } from "./history.ts";
import { isListedToAll } from "../../rules/names.ts";
import { token, untoken } from "./names.ts";
import { mapLimit } from "./reads.ts";
import { raise } from "./monotonic.ts";
import type { Conn } from "./conn.ts";
import type { Io } from "./setup.ts";

const FLUSH_MS = 2_000;
const KNOWN = 100_000;
const MEMBERS_CACHE_MS = 5_000;

const roomKey = (room: string) => `r.${token(room)}`;
const memberKey = (room: string, user: string) => `m.${token(room)}.${token(user)}`;

export class NatsRooms implements RoomDirectory, SeqFloor {
  /** Rooms whose entry exists, so that it is created once per instance, not once per message. */
  private readonly known = new Set<string>();
  private readonly pending = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly memberCache = new Map<string, { users: string[]; at: number }>();

  constructor(
    private readonly io: () => Io,
    private readonly conn: Conn,
    private readonly lastSeq: (room: string) => Promise<bigint>,
    private readonly log: Logger,
    /** What else a deleted room takes with it (its read state). */
    private readonly dropAlso: (room: string) => Promise<void> = async () => {},
  ) {}

  async addMember(room: string, user: string): Promise<void> {
    // A room exists once it has a message (record() lists it): joining alone stores nothing.
    if (!this.known.has(room)) {
      const e = await this.conn.call(this.io().rooms.get(roomKey(room)), "room directory read");
      if (e?.operation !== "PUT") return;
      this.remember(room);
    }
    await this.conn.retry(() => this.io().rooms.put(memberKey(room, user), ""), "room directory write");
  }

  /**
   * A listing of the bucket's keys (a consumer on the server): kept a few seconds per room, since a
   * webhook asks for it with every message of a busy room.
   */
  async members(room: string): Promise<string[]> {
    const had = this.memberCache.get(room);
    if (had && Date.now() - had.at < MEMBERS_CACHE_MS) return had.users;
    const users: string[] = [];
    for await (const key of await this.conn.retry(() => this.io().rooms.keys(`m.${token(room)}.*`), "room directory listing"))
      users.push(untoken(key.split(".")[2]));
    users.sort();
    if (this.memberCache.size >= KNOWN) this.memberCache.clear();
    this.memberCache.set(room, { users, at: Date.now() });
    return users;
  }

  async removeMember(room: string, user: string): Promise<void> {
    await this.conn.retry(() => this.io().rooms.delete(memberKey(room, user)), "room directory write");
  }

  /**
   * A KV bucket lists keys in no order, so a page costs the names of every room (the "r." keys,
   * filtered on the server) plus the caller's own memberships ("m.*.<user>"), never the other
   * members of any room; then one listing of members per room on the page. The embedded store
   * reads only the page.
   */
  async list(user: string, after: string, limit: number): Promise<RoomPage> {
    const keys = (filter: string) => this.conn.retry(() => this.io().rooms.keys(filter), "room directory listing");
    const visible: string[] = [];
    for await (const key of await keys("r.*")) {
      const room = untoken(key.slice(2));
      if (room > after && isListedToAll(room)) visible.push(room);
    }
    for await (const key of await keys(`m.*.${token(user)}`)) {
      const room = untoken(key.split(".")[1]);
      // A member key exists only for a room that exists (addMember): no need to look.
      if (room > after && !isListedToAll(room)) visible.push(room);
    }
    // Bytewise order, as the embedded store's: code units compare the same for these names.
    visible.sort();
    const page = visible.slice(0, limit);
    const rooms = await mapLimit(page, 16, async (name) => ({ name, members: await this.memberCount(name), lastSeq: await this.lastSeq(name) }));
    return { rooms, next: visible.length > limit ? page[page.length - 1] : "" };
  }

  async drop(room: string): Promise<void> {
    const { rooms } = this.io();
    this.known.delete(room);
    this.pending.delete(room);
    const members: string[] = [];
    for await (const key of await this.conn.retry(() => rooms.keys(`m.${token(room)}.*`), "room directory listing")) members.push(key);
    for (const key of [roomKey(room), ...members]) await this.conn.retry(() => rooms.purge(key), "room directory write");
    await this.dropAlso(room);
  }

  private async memberCount(room: string): Promise<number> {
    let n = 0;
    for await (const _ of await this.conn.retry(() => this.io().rooms.keys(`m.${token(room)}.*`), "room directory listing")) n++;
    return n;
  }

  async get(room: string): Promise<number> {
    const e = await this.conn.call(this.io().rooms.get(roomKey(room)), "room directory read");
    return e?.operation === "PUT" ? Number(e.string()) || 0 : 0;
  }

  async record(room: string, seq: number): Promise<void> {
    // A room's first message lists it before the sender hears back, like the embedded store; if
    // the bucket is busy electing a leader, the floor written below lists it a little later.
    await this.ensure(room, seq).catch(() => {});
    this.pending.set(room, Math.max(seq, this.pending.get(room) ?? 0));
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Writes the floors waiting to be written; close() calls it so that a clean stop loses none. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending.clear();
    await Promise.all(batch.map(([room, seq]) => this.raise(room, seq).catch((err) => this.log.warn("room seq floor not saved", { room, err }))));
  }

  private async ensure(room: string, seq: number): Promise<void> {
    if (this.known.has(room)) return;
    const { rooms } = this.io();
    // create() refuses an existing key, which is the common case and fine.
    const create = () =>
      rooms.create(roomKey(room), String(seq)).catch(async (err) => {
        if ((await rooms.get(roomKey(room)))?.operation !== "PUT") throw err;
      });
    await this.conn.call(create(), "room directory write");
    this.remember(room);
  }

  private remember(room: string): void {
    if (this.known.size >= KNOWN) this.known.clear();
    this.known.add(room);
  }

  /** The floor only goes up (monotonic.ts). */
  private async raise(room: string, seq: number): Promise<void> {
    await raise(this.io().rooms, roomKey(room), seq);
  }
}
