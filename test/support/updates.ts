// Changes to a stored message as the engine tests hand them to HistoryStore.update: by "ann", with
// the change itself done here (the rules of who may are the core's, tested there).
import type { Message } from "../../app/gen/chat/v1/chat_pb.ts";
import { UpdateKind } from "../../app/gen/chat/v1/chat_pb.ts";
import type { UpdateDraft } from "../../app/engine/engine.ts";

const change = (room: string, targetSeq: bigint, kind: UpdateKind, to: (m: Message) => Message, clientMsgId: string): UpdateDraft => ({
  room,
  targetSeq,
  from: "ann",
  clientMsgId,
  region: "x",
  kind,
  emoji: "",
  change: (m) => (m ? to(m) : undefined),
});

export const editDraft = (room: string, targetSeq: bigint, text: string, clientMsgId = "") =>
  change(room, targetSeq, UpdateKind.EDITED, (m) => ({ ...m, text }) as Message, clientMsgId);

export const deleteDraft = (room: string, targetSeq: bigint, clientMsgId = "") =>
  change(room, targetSeq, UpdateKind.DELETED, (m) => ({ ...m, text: "", deleted: true }) as Message, clientMsgId);
