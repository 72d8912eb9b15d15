// chat.v1.ChatService's unary RPCs on the Connect path: each maps one to one onto the chat core.
// Its streams (Subscribe, Chat) are served by direct.ts on every protocol and HTTP version; left
// out here, they are Connect's "not implemented", which no stream reaches (a request direct.ts
// does not take, in a compression nobody supports, is refused by Connect before any handler).
import { create } from "@bufbuild/protobuf";
import { type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { ChatService, HistoryResponseSchema, ListOnlineResponseSchema, ListRoomsResponseSchema, SendResponseSchema } from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import { userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { noUserError } from "../../core/auth.ts";

export function registerChatV1(router: ConnectRouter, core: ChatCore): void {
  router.service(ChatService, {
    async send(req, ctx) {
      const target = req.target.case === "toUser" ? { toUser: req.target.value } : { room: req.target.value ?? "" };
      const message = await core.send(requireUser(ctx), target, req.text, req.clientMsgId, protocolOf(ctx));
      return create(SendResponseSchema, { message });
    },

    async history(req, ctx) {
      const page = await core.history(requireUser(ctx), req.room, req.beforeSeq, req.afterSeq, req.limit, protocolOf(ctx));
      return create(HistoryResponseSchema, page);
    },

    async listRooms(req, ctx) {
      const page = await core.listRooms(requireUser(ctx), req.pageSize, req.pageToken, protocolOf(ctx));
      return create(ListRoomsResponseSchema, page);
    },

    async listOnline(req, ctx) {
      const users = await core.listOnline(requireUser(ctx), req.room, protocolOf(ctx));
      return create(ListOnlineResponseSchema, { users });
    },
  });
}

export function requireUser(ctx: HandlerContext): string {
  const user = ctx.values.get(userKey);
  if (!user) throw noUserError();
  return user;
}
