// chat.v1.ServerService, the API for a backend (docs/server-api.md): each call checks its API key
// and scope (core/api-keys.ts), is logged with the key's name, and maps onto the chat core as the
// key's actor: a server-wide admin named after the key, held to no per-user rate.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { HistoryResponseSchema, ListOnlineResponseSchema, UpdateMessageResponseSchema } from "../../gen/chat/v1/chat_pb.ts";
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
import { sendTarget, type ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";
import type { Logger } from "../../log.ts";
import { protocolOf } from "../protocol.ts";
import { ROOM_CALLS } from "./room-calls.ts";

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
      const target = sendTarget(req.target);
      const a = as(ctx, "publish", { from: req.from, ...target });
      return create(PublishResponseSchema, { message: await core.publish(req.from, target, req.text, req.idempotencyKey, req.replyTo, a.protocol) });
    },

    createRoom: (req, ctx) => ROOM_CALLS.createRoom(core, as(ctx, "rooms", { room: req.name }), req),
    updateRoom: (req, ctx) => ROOM_CALLS.updateRoom(core, as(ctx, "rooms", { room: req.room }), req),
    deleteRoom: (req, ctx) => ROOM_CALLS.deleteRoom(core, as(ctx, "rooms", { room: req.room }), req),
    addMember: (req, ctx) => ROOM_CALLS.addMember(core, as(ctx, "rooms", { room: req.room, user: req.user }), req),
    removeMember: (req, ctx) => ROOM_CALLS.removeMember(core, as(ctx, "rooms", { room: req.room, user: req.user }), req),
    setRole: (req, ctx) => ROOM_CALLS.setRole(core, as(ctx, "rooms", { room: req.room, user: req.user }), req),
    ban: (req, ctx) => ROOM_CALLS.ban(core, as(ctx, "moderate", { room: req.room, user: req.user }), req),
    unban: (req, ctx) => ROOM_CALLS.unban(core, as(ctx, "moderate", { room: req.room, user: req.user }), req),
    mute: (req, ctx) => ROOM_CALLS.mute(core, as(ctx, "moderate", { room: req.room, user: req.user }), req),
    unmute: (req, ctx) => ROOM_CALLS.unmute(core, as(ctx, "moderate", { room: req.room, user: req.user }), req),

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
    getRoom: (req, ctx) => ROOM_CALLS.getRoom(core, as(ctx, "read", { room: req.room }), req),
    listMembers: (req, ctx) => ROOM_CALLS.listMembers(core, as(ctx, "read", { room: req.room }), req),

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
