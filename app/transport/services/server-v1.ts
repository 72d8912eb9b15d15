// chat.v1.ServerService, the API for a backend (docs/server-api.md): each call checks its API key
// and scope (core/api-keys.ts), is logged with the key's name, and maps onto the chat core as the
// key's actor: a server-wide admin named after the key, held to no per-user rate.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  DeleteRoomResponseSchema,
  HistoryResponseSchema,
  ListMembersResponseSchema,
  ListOnlineResponseSchema,
  type Message,
  RoomChangeResponseSchema,
  RoomResponseSchema,
  UpdateMessageResponseSchema,
} from "../../gen/chat/v1/chat_pb.ts";
import {
  DisconnectResponseSchema,
  CreateWebhookEndpointResponseSchema,
  DeleteWebhookEndpointResponseSchema,
  ListDeadLettersResponseSchema,
  ListWebhookEndpointsResponseSchema,
  PublishResponseSchema,
  RedeliverDeadLettersResponseSchema,
  ServerService,
} from "../../gen/chat/v1/server_pb.ts";
import type { WebhookOutbox } from "../../engine/engine.ts";
import type { Endpoint, WebhookEndpoints } from "../../webhooks/endpoints.ts";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ApiKeys, Scope } from "../../core/api-keys.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";
import type { Logger } from "../../log.ts";
import { protocolOf } from "../protocol.ts";

export function registerServerV1(
  router: ConnectRouter,
  core: ChatCore,
  keys: ApiKeys,
  log: Logger,
  outbox?: WebhookOutbox,
  endpoints?: WebhookEndpoints,
): void {
  /** The key's actor, once its key and scope are checked; every call is logged with the key's name. */
  const as = (ctx: HandlerContext, scope: Scope, what: Record<string, unknown>): Actor => {
    const method = ctx.method.name;
    try {
      const key = keys.check(ctx.requestHeader, scope);
      log.info("server api call", { key: key.name, method, ...what });
      return { user: key.name, admin: true, server: true, protocol: protocolOf(ctx) };
    } catch (err) {
      log.warn("server api call refused", { method, err: (err as Error).message });
      throw err;
    }
  };
  const changed = (entry: Message | undefined) => create(RoomChangeResponseSchema, { entry });
  const needEndpoints = () => {
    if (!endpoints || !outbox) throw new ConnectError("this server's engine sends no webhooks", Code.FailedPrecondition);
    return endpoints;
  };
  const described = (e: Endpoint, fromFile: boolean) => ({ id: e.id, url: e.url, events: [...e.events], fromFile });
  const needOutbox = () => {
    if (!outbox) throw new ConnectError("this server sends no webhooks (EDGECHAT_WEBHOOKS_FILE)", Code.FailedPrecondition);
    return outbox;
  };

  router.service(ServerService, {
    async publish(req, ctx) {
      const target = req.target.case === "toUser" ? { toUser: req.target.value } : { room: req.target.value ?? "" };
      const a = as(ctx, "publish", { from: req.from, ...target });
      return create(PublishResponseSchema, { message: await core.publish(req.from, target, req.text, req.idempotencyKey, req.replyTo, a.protocol) });
    },

    async createRoom(req, ctx) {
      return create(RoomResponseSchema, await core.rooms.create(as(ctx, "rooms", { room: req.name }), req.name, req.kind, req.title, req.topic));
    },
    async updateRoom(req, ctx) {
      return create(
        RoomResponseSchema,
        await core.rooms.update(as(ctx, "rooms", { room: req.room }), req.room, { title: req.title, topic: req.topic, kind: req.kind }),
      );
    },
    async deleteRoom(req, ctx) {
      await core.rooms.delete(as(ctx, "rooms", { room: req.room }), req.room);
      return create(DeleteRoomResponseSchema);
    },
    async addMember(req, ctx) {
      return changed(await core.rooms.addMember(as(ctx, "rooms", { room: req.room, user: req.user }), req.room, req.user));
    },
    async removeMember(req, ctx) {
      return changed(await core.rooms.removeMember(as(ctx, "rooms", { room: req.room, user: req.user }), req.room, req.user));
    },
    async setRole(req, ctx) {
      return changed(await core.rooms.setRole(as(ctx, "rooms", { room: req.room, user: req.user }), req.room, req.user, req.role));
    },

    async ban(req, ctx) {
      return changed(await core.rooms.ban(as(ctx, "moderate", { room: req.room, user: req.user }), req.room, req.user, req.until, req.reason));
    },
    async unban(req, ctx) {
      return changed(await core.rooms.unban(as(ctx, "moderate", { room: req.room, user: req.user }), req.room, req.user));
    },
    async mute(req, ctx) {
      return changed(await core.rooms.mute(as(ctx, "moderate", { room: req.room, user: req.user }), req.room, req.user, req.until));
    },
    async unmute(req, ctx) {
      return changed(await core.rooms.unmute(as(ctx, "moderate", { room: req.room, user: req.user }), req.room, req.user));
    },
    async deleteMessage(req, ctx) {
      const a = as(ctx, "moderate", { room: req.room, seq: String(req.seq) });
      return create(UpdateMessageResponseSchema, await core.deleteMessage(a, req.room, req.seq, req.clientMsgId));
    },
    async disconnect(req, ctx) {
      as(ctx, "moderate", { user: req.user });
      await core.disconnect(req.user, req.reason);
      return create(DisconnectResponseSchema);
    },

    async history(req, ctx) {
      const a = as(ctx, "read", { room: req.room });
      return create(HistoryResponseSchema, await core.history(a, req.room, req.beforeSeq, req.afterSeq, req.limit));
    },
    async listOnline(req, ctx) {
      const a = as(ctx, "read", { room: req.room });
      return create(ListOnlineResponseSchema, { users: await core.listOnline(a, req.room) });
    },
    async getRoom(req, ctx) {
      return create(RoomResponseSchema, { room: core.rooms.get(as(ctx, "read", { room: req.room }), req.room) });
    },
    async listMembers(req, ctx) {
      return create(ListMembersResponseSchema, core.rooms.members(as(ctx, "read", { room: req.room }), req.room));
    },

    async listDeadLetters(req, ctx) {
      as(ctx, "webhooks", { endpoint: req.endpoint });
      if (req.limit > 500) throw new ConnectError("limit must be at most 500", Code.InvalidArgument);
      const dead = (await needOutbox().deadLetters(req.endpoint, req.limit || 100)).map((d) => ({
        id: d.eventId,
        endpoint: d.endpoint,
        type: d.type,
        createdAt: timestampFromMs(d.createdAtMs),
        attempts: d.attempts,
        lastError: d.lastError,
        body: d.body,
      }));
      return create(ListDeadLettersResponseSchema, { deadLetters: dead });
    },
    async redeliverDeadLetters(req, ctx) {
      as(ctx, "webhooks", { endpoint: req.endpoint });
      return create(RedeliverDeadLettersResponseSchema, { redelivered: await needOutbox().redeliver(req.endpoint) });
    },
    async createWebhookEndpoint(req, ctx) {
      as(ctx, "webhooks", { endpoint: req.id, url: req.url });
      const { endpoint, secret } = await needEndpoints().create(req.id, req.url, req.events);
      return create(CreateWebhookEndpointResponseSchema, { endpoint: described(endpoint, false), secret });
    },
    async listWebhookEndpoints(_req, ctx) {
      as(ctx, "webhooks", {});
      const all = endpoints?.list() ?? [];
      return create(ListWebhookEndpointsResponseSchema, { endpoints: all.map((e) => described(e, endpoints!.isFromFile(e.id))) });
    },
    async deleteWebhookEndpoint(req, ctx) {
      as(ctx, "webhooks", { endpoint: req.id });
      await needEndpoints().delete(req.id);
      return create(DeleteWebhookEndpointResponseSchema);
    },
  });
}
