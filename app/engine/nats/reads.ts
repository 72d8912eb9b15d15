// Reading a room by its own seq. Each message has a subject of its own, edgechat.room.<room>.<seq>
// (history.ts says why), so message r of a room is one exact lookup ("the last message on that
// subject", a direct get served by the nearest replica), and a page is that many lookups in
// parallel: no search, no consumer, nothing held on the server between pages.
import type { ReadRange } from "../engine.ts";

/** The room seqs a page covers, given the room's newest seq (engine.ts ReadRange semantics). */
export function pageRange(range: ReadRange, newest: number): { from: number; end: number; hasMore: boolean } {
  const before = range.beforeSeq && range.beforeSeq > 0n ? Number(range.beforeSeq) : Infinity;
  const to = Math.min(newest, before - 1);
  if (range.afterSeq !== undefined) {
    const from = Number(range.afterSeq) + 1;
    const end = Math.min(to, from + range.limit - 1);
    return { from, end, hasMore: end < to };
  }
  const from = Math.max(1, to - range.limit + 1);
  return { from, end: to, hasMore: from > 1 };
}

/**
 * Assembles a page from the lookups of seqs from..end (null: not found, even by the leader). Seqs
 * are gapless but the oldest expire, so leading misses are expired messages: read backwards, there
 * is nothing older. A miss after a hit should not happen; the page stops there, "more to come".
 */
export function assemble<T extends { seq: bigint }>(found: (T | null)[], hasMore: boolean, forward: boolean): { messages: T[]; hasMore: boolean } {
  const first = found.findIndex((m) => m !== null);
  if (first < 0) return { messages: [], hasMore: forward && hasMore };
  let end = first;
  while (end < found.length && found[end]) end++;
  const messages = found.slice(first, end) as T[];
  if (end < found.length) return { messages, hasMore: true };
  return { messages, hasMore: forward || first === 0 ? hasMore : false };
}

/**
 * The newest seq of a room, from `known`, a seq at or below it (a stored message, or 0): doubles the
 * step while seqs exist, then bisects between the last hit and the first miss. A known value that
 * is a few messages behind costs a few lookups; one that is current costs one.
 */
export async function findNewest(known: number, exists: (seq: number) => Promise<boolean>): Promise<number> {
  let lo = known;
  let hi = 0;
  for (let step = 1; ; step *= 2) {
    if (!(await exists(lo + step))) {
      hi = lo + step;
      break;
    }
    lo += step;
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await exists(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Runs `fn` over `items`, at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
