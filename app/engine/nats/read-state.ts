// Read state in a KV bucket, one key per (room, user): <room token>.<user token>, so that a
// deleted room's keys are one listing away. Every region reads and writes the same keys.
import type { ReadStateStore } from "../engine.ts";
import type { Conn } from "./conn.ts";
import { raise } from "./monotonic.ts";
import { token } from "./names.ts";
import { mapLimit } from "./reads.ts";
import type { Io } from "./setup.ts";

const key = (room: string, user: string) => `${token(room)}.${token(user)}`;

export class NatsReadState implements ReadStateStore {
  constructor(
    private readonly io: () => Io,
    private readonly conn: Conn,
  ) {}

  async get(user: string, rooms: string[]): Promise<Map<string, bigint>> {
    const kv = this.io().readState;
    const seqs = await mapLimit(rooms, 16, async (room) => {
      const e = await this.conn.call(kv.get(key(room, user)), "read state read");
      return e?.operation === "PUT" ? BigInt(Number(e.string()) || 0) : undefined;
    });
    const out = new Map<string, bigint>();
    rooms.forEach((room, i) => seqs[i] !== undefined && out.set(room, seqs[i]));
    return out;
  }

  async raise(user: string, room: string, seq: bigint): Promise<bigint> {
    const kv = this.io().readState;
    return BigInt(await this.conn.retry(() => raise(kv, key(room, user), Number(seq)), "read state write"));
  }

  /** A deleted room's read state goes with it. */
  async drop(room: string): Promise<void> {
    const kv = this.io().readState;
    const keys: string[] = [];
    for await (const k of await this.conn.retry(() => kv.keys(`${token(room)}.*`), "read state listing")) keys.push(k);
    for (const k of keys) await this.conn.retry(() => kv.purge(k), "read state write");
  }
}
