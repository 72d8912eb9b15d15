// chat.v1.ChatService's unary RPCs on the Connect path: each maps one to one onto the chat core
// (the room writes through room-writes.ts, which the direct path serves too).
// Its streams (Subscribe, Chat) are served by direct.ts on every protocol and HTTP version; left
// out here, they are Connect's "not implemented", which no stream reaches (a request direct.ts
// does not take, in a compression nobody supports, is refused by Connect before any handler).
import { create } from "@bufbuild/protobuf";
import { type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  BlockResponseSchema,
  ChatService,
  HistoryResponseSchema,
  ListBlockedResponseSchema,
  ListOnlineResponseSchema,
  ListRoomsResponseSchema,
  MarkReadResponseSchema,
} from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";
import { adminKey, userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { noUserError } from "../../core/auth.ts";
import { ROOM_WRITES } from "./room-writes.ts";
import { ROOM_CALLS } from "./room-calls.ts";

export function registerChatV1(router: ConnectRouter, core: ChatCore): void {
  router.service(ChatService, {
    send: (req, ctx) => ROOM_WRITES.send.serve(core, actorOf(ctx), req),
    editMessage: (req, ctx) => ROOM_WRITES.editMessage.serve(core, actorOf(ctx), req),
    deleteMessage: (req, ctx) => ROOM_WRITES.deleteMessage.serve(core, actorOf(ctx), req),
    react: (req, ctx) => ROOM_WRITES.react.serve(core, actorOf(ctx), req),

    async markRead(req, ctx) {
      return create(MarkReadResponseSchema, { lastReadSeq: await core.markRead(requireUser(ctx), req.room, req.seq, protocolOf(ctx)) });
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

    createRoom: (req, ctx) => ROOM_CALLS.createRoom(core, actorOf(ctx), req),
    getRoom: (req, ctx) => ROOM_CALLS.getRoom(core, actorOf(ctx), req),
    updateRoom: (req, ctx) => ROOM_CALLS.updateRoom(core, actorOf(ctx), req),
    deleteRoom: (req, ctx) => ROOM_CALLS.deleteRoom(core, actorOf(ctx), req),
    listMembers: (req, ctx) => ROOM_CALLS.listMembers(core, actorOf(ctx), req),
    addMember: (req, ctx) => ROOM_CALLS.addMember(core, actorOf(ctx), req),
    removeMember: (req, ctx) => ROOM_CALLS.removeMember(core, actorOf(ctx), req),
    setRole: (req, ctx) => ROOM_CALLS.setRole(core, actorOf(ctx), req),
    ban: (req, ctx) => ROOM_CALLS.ban(core, actorOf(ctx), req),
    unban: (req, ctx) => ROOM_CALLS.unban(core, actorOf(ctx), req),
    mute: (req, ctx) => ROOM_CALLS.mute(core, actorOf(ctx), req),
    unmute: (req, ctx) => ROOM_CALLS.unmute(core, actorOf(ctx), req),
    async block(req, ctx) {
      await core.rooms.block(actorOf(ctx), req.user, true);
      return create(BlockResponseSchema);
    },
    async unblock(req, ctx) {
      await core.rooms.block(actorOf(ctx), req.user, false);
      return create(BlockResponseSchema);
    },
    async listBlocked(_req, ctx) {
      return create(ListBlockedResponseSchema, { users: core.rooms.blocked(actorOf(ctx)) });
    },
  });
}

function actorOf(ctx: HandlerContext): Actor {
  return { user: requireUser(ctx), admin: ctx.values.get(adminKey), protocol: protocolOf(ctx) };
}

export function requireUser(ctx: HandlerContext): string {
  const user = ctx.values.get(userKey);
  if (!user) throw noUserError();
  return user;
}
