// The unary calls that write to a room, which a busy room makes many of: what each does in the chat
// core, in one place for both paths that serve them, the Connect router (chat-v1.ts) and, for gRPC
// and gRPC-Web on HTTP/2, the direct path (direct.ts), which skips the router.
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  DeleteMessageRequestSchema,
  EditMessageRequestSchema,
  ReactRequestSchema,
  SendRequestSchema,
  SendResponseSchema,
  UpdateMessageResponseSchema,
} from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";

export interface RoomWrite<I extends DescMessage, O extends DescMessage> {
  /** The method's name in chat.v1.ChatService. */
  name: string;
  input: I;
  output: O;
  serve(core: ChatCore, actor: Actor, req: MessageShape<I>): Promise<MessageInitShape<O>>;
}

const write = <I extends DescMessage, O extends DescMessage>(w: RoomWrite<I, O>) => w;

export const ROOM_WRITES = {
  send: write({
    name: "Send",
    input: SendRequestSchema,
    output: SendResponseSchema,
    serve: async (core, a, req) => ({ message: await core.sendRequest(a.user, req, a.protocol ?? "unknown") }),
  }),
  editMessage: write({
    name: "EditMessage",
    input: EditMessageRequestSchema,
    output: UpdateMessageResponseSchema,
    serve: (core, a, req) => core.editMessage(a, req.room, req.seq, req.text, req.clientMsgId),
  }),
  deleteMessage: write({
    name: "DeleteMessage",
    input: DeleteMessageRequestSchema,
    output: UpdateMessageResponseSchema,
    serve: (core, a, req) => core.deleteMessage(a, req.room, req.seq, req.clientMsgId),
  }),
  react: write({
    name: "React",
    input: ReactRequestSchema,
    output: UpdateMessageResponseSchema,
    serve: (core, a, req) => core.react(a, req.room, req.seq, req.emoji, !req.remove, req.clientMsgId),
  }),
};
