// What both engines share about update entries (engine.ts: HistoryStore.update): which earlier
// entry a retried request is, and the changed message attached to each entry as it is read.
import type { Message } from "../gen/chat/v1/chat_pb.ts";
import type { UpdateDraft } from "./engine.ts";

/**
 * Whether `entry` recorded the request `u` (the same key is looked up first): the same message,
 * kind and emoji. A key used again for another request is another request.
 */
export function isSameRequest(entry: Message, u: Pick<UpdateDraft, "targetSeq" | "kind" | "emoji">): boolean {
  const x = entry.update;
  return x !== undefined && x.targetSeq === u.targetSeq && x.kind === u.kind && x.emoji === u.emoji;
}

/** Sets update.message on each update entry of `page` whose message is among `targets` (by seq); returns `page`. */
export function attachTargets(page: Message[], targets: Message[]): Message[] {
  const bySeq = new Map(targets.map((m) => [m.seq, m]));
  for (const m of page) if (m.update) m.update.message = bySeq.get(m.update.targetSeq);
  return page;
}
