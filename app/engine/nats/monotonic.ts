// A number in a KV key that only goes up: a room's seq floor, a user's read state. Not by
// update(revision): a clustered nats-server before 2.9.21 checks that expectation only on the
// leader before proposing (nats-server#4320), so two concurrent updates may both pass. Instead:
// write when higher, read back, and write again if a lower write landed last.
import type { KV } from "@nats-io/kv";

/** Raises the key's number to `value` unless it is higher already; resolves the number stored. */
export async function raise(kv: KV, key: string, value: number): Promise<number> {
  for (let i = 0; i < 3; i++) {
    const e = await kv.get(key);
    const stored = e?.operation === "PUT";
    const have = stored ? Number(e.string()) || 0 : 0;
    // An absent key is written even for 0: that the number exists can matter (read state).
    if (stored && have >= value) return have;
    await kv.put(key, String(value));
  }
  const e = await kv.get(key);
  return e?.operation === "PUT" ? Number(e.string()) || 0 : value;
}
