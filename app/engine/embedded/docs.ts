// The access store's documents (engine/access.ts) in the SQLite file, written by its one writer
// with everything else. One instance owns the file, so the revision check is a look at this map.
import type { Database } from "bun:sqlite";
import type { DocKind, DocStore } from "../access.ts";
import type { WriteOp } from "./sqlite-writer.ts";

export class SqliteDocs implements DocStore {
  /** Each document's revision, including writes not yet committed: they are reserved here. */
  private readonly revisions = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly commit: (ops: WriteOp[]) => Promise<void>,
  ) {}

  async follow(onChange: (kind: DocKind, id: string, value: string | undefined, revision: number) => void): Promise<void> {
    // Read whole once at start, as the access store holds every document (a few per created room or blocking user).
    const rows = this.db.query("SELECT kind, id, value, revision FROM docs").all() as { kind: DocKind; id: string; value: string; revision: bigint }[];
    for (const r of rows) {
      this.revisions.set(key(r.kind, r.id), Number(r.revision));
      onChange(r.kind, r.id, r.value, Number(r.revision));
    }
  }

  async read(kind: DocKind, id: string): Promise<{ value: string | undefined; revision: number }> {
    const r = this.db.query("SELECT value, revision FROM docs WHERE kind = ? AND id = ?").get(kind, id) as { value: string; revision: bigint } | null;
    return r ? { value: r.value, revision: Number(r.revision) } : { value: undefined, revision: 0 };
  }

  async write(kind: DocKind, id: string, value: string | undefined, revision: number): Promise<number | false> {
    const k = key(kind, id);
    const had = this.revisions.get(k) ?? 0;
    if (had !== revision) return false;
    // A deleted document's revision goes on counting, so a late write of the old one cannot land.
    const next = had + 1;
    this.revisions.set(k, next);
    try {
      await this.commit(value === undefined ? [["deleteDoc", kind, id]] : [["putDoc", kind, id, value, next]]);
    } catch (err) {
      if (this.revisions.get(k) === next) this.revisions.set(k, had);
      throw err;
    }
    return next;
  }

  check(): void {}
}

const key = (kind: DocKind, id: string) => `${kind}\0${id}`;
