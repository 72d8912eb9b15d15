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
  DeleteRoomResponseSchema,
  HistoryResponseSchema,
  ListBlockedResponseSchema,
  ListMembersResponseSchema,
  ListOnlineResponseSchema,
  ListRoomsResponseSchema,
  MarkReadResponseSchema,
  type Message,
  RoomChangeResponseSchema,
  RoomResponseSchema,
} from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";
import { adminKey, userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { noUserError } from "../../core/auth.ts";
import { ROOM_WRITES } from "./room-writes.ts";

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

    async createRoom(req, ctx) {
      return create(RoomResponseSchema, await core.rooms.create(actorOf(ctx), req.name, req.kind, req.title, req.topic));
    },
    async getRoom(req, ctx) {
      return create(RoomResponseSchema, { room: core.rooms.get(actorOf(ctx), req.room) });
    },
    async updateRoom(req, ctx) {
      return create(RoomResponseSchema, await core.rooms.update(actorOf(ctx), req.room, { title: req.title, topic: req.topic, kind: req.kind }));
    },
    async deleteRoom(req, ctx) {
      await core.rooms.delete(actorOf(ctx), req.room);
      return create(DeleteRoomResponseSchema);
    },
    async listMembers(req, ctx) {
      return create(ListMembersResponseSchema, core.rooms.members(actorOf(ctx), req.room));
    },
    async addMember(req, ctx) {
      return changed(await core.rooms.addMember(actorOf(ctx), req.room, req.user));
    },
    async removeMember(req, ctx) {
      return changed(await core.rooms.removeMember(actorOf(ctx), req.room, req.user));
    },
    async setRole(req, ctx) {
      return changed(await core.rooms.setRole(actorOf(ctx), req.room, req.user, req.role));
    },
    async ban(req, ctx) {
      return changed(await core.rooms.ban(actorOf(ctx), req.room, req.user, req.until, req.reason));
    },
    async unban(req, ctx) {
      return changed(await core.rooms.unban(actorOf(ctx), req.room, req.user));
    },
    async mute(req, ctx) {
      return changed(await core.rooms.mute(actorOf(ctx), req.room, req.user, req.until));
    },
    async unmute(req, ctx) {
      return changed(await core.rooms.unmute(actorOf(ctx), req.room, req.user));
    },
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

/** The entry that recorded a change; none when there was nothing to change (an unban of someone not banned). */
const changed = (entry: Message | undefined) => create(RoomChangeResponseSchema, { entry });

function actorOf(ctx: HandlerContext): Actor {
  return { user: requireUser(ctx), admin: ctx.values.get(adminKey), protocol: protocolOf(ctx) };
}

export function requireUser(ctx: HandlerContext): string {
  const user = ctx.values.get(userKey);
  if (!user) throw noUserError();
  return user;
}
