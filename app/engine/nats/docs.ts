// The access store's documents (engine/access.ts) in a KV bucket: every instance follows the whole
// bucket, so a ban written in one region is in every region's memory within moments, and a
// region that was cut off gets every document that changed meanwhile when it follows again (from
// the revision after the last one it saw; a KV bucket keeps each key's newest value, deletes too).
import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "../../log.ts";
import type { DocKind, DocStore } from "../access.ts";
import type { Conn } from "./conn.ts";
import { token, untoken } from "./names.ts";

/** JetStream's "wrong last sequence": the key's revision is not the one the write expected. */
const WRONG_LAST_SEQUENCE = 10071;
const KINDS = new Set<DocKind>(["room", "block", "webhook"]);

type OnChange = (kind: DocKind, id: string, value: string | undefined, revision: number) => void;

export class NatsDocs implements DocStore {
  private lastRevision = 0;
  private stopped = false;
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly bucket: () => KV,
    private readonly conn: Conn,
    private readonly log: Logger,
  ) {}

  async follow(onChange: OnChange): Promise<void> {
    const kv = this.bucket();
    const status = await kv.status();
    let loaded!: () => void;
    const initial = new Promise<void>((resolve) => (loaded = resolve));
    if (status.values === 0) loaded();
    void this.run(kv, onChange, loaded);
    await initial;
  }

  /** Follows the bucket until stop(), again from where it was after each interruption. */
  private async run(kv: KV, onChange: OnChange, loaded: () => void): Promise<void> {
    while (!this.stopped) {
      try {
        const iter = await kv.watch(this.lastRevision > 0 ? { resumeFromRevision: this.lastRevision + 1 } : {});
        this.stopWatch = () => iter.stop();
        for await (const e of iter) {
          this.lastRevision = Math.max(this.lastRevision, e.revision);
          const [kind, t] = e.key.split(".");
          const value = e.operation === "PUT" ? e.string() : "";
          if (KINDS.has(kind as DocKind) && t) onChange(kind as DocKind, untoken(t), value === "" ? undefined : value, e.revision);
          if (!e.isUpdate && e.delta === 0) loaded();
          if (e.isUpdate) loaded();
        }
      } catch (err) {
        if (!this.stopped) this.log.warn("access documents: following the bucket failed; again in a second", { err });
      }
      if (!this.stopped) await Bun.sleep(1_000);
    }
  }

  async read(kind: DocKind, id: string): Promise<{ value: string | undefined; revision: number }> {
    const e = await this.conn.call(this.bucket().get(key(kind, id)), "access document read");
    if (!e) return { value: undefined, revision: 0 };
    return { value: (e.operation === "PUT" && e.string()) || undefined, revision: e.revision };
  }

  async write(kind: DocKind, id: string, value: string | undefined, revision: number): Promise<number | false> {
    const kv = this.bucket();
    const k = key(kind, id);
    try {
      // A deleted document is an empty value rather than a KV delete, whose revision the client
      // does not return: the caller needs it to order this write among the ones it follows.
      const next = revision === 0 ? kv.create(k, value ?? "") : kv.update(k, value ?? "", revision);
      return await this.conn.call(next, "access document write");
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  check(): void {
    this.conn.need();
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
  }
}

const key = (kind: DocKind, id: string) => `${kind}.${token(id)}`;

function isConflict(err: unknown): boolean {
  const cause = (err as { cause?: unknown })?.cause ?? err;
  if (cause instanceof JetStreamApiError && cause.code === WRONG_LAST_SEQUENCE) return true;
  return /wrong last sequence|key exists/i.test(String((err as Error)?.message ?? err));
}
