// chat.v1.ChatService: the RPCs map one to one onto the chat core.
import { create } from "@bufbuild/protobuf";
import { type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  ChatService,
  HistoryResponseSchema,
  ListOnlineResponseSchema,
  ListRoomsResponseSchema,
  SendResponseSchema,
  type ChatRequest,
} from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Session } from "../../core/session.ts";
import { asConnectError } from "../../core/events.ts";
import { userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { streamSession } from "../session-stream.ts";
import { noUserError } from "../../core/auth.ts";

export function registerChatV1(router: ConnectRouter, core: ChatCore): void {
  router.service(ChatService, {
    async *chat(requests, ctx) {
      const s = await core.open(requireUser(ctx), protocolOf(ctx));
      void pump(core, s, requests);
      yield* streamSession(core, s, ctx);
    },

    async *subscribe(req, ctx) {
      const s = await core.subscribe(requireUser(ctx), protocolOf(ctx), req.rooms, req.sinceSeq);
      yield* streamSession(core, s, ctx);
    },

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

/** Feeds a Chat stream's requests to the core, one at a time so that acks keep the send order. */
async function pump(core: ChatCore, s: Session, requests: AsyncIterable<ChatRequest>): Promise<void> {
  try {
    for await (const req of requests) {
      if (s.closed) return;
      await core.handle(s, req);
    }
    // The client half-closed: write what is queued, then end the stream with OK.
    s.end();
  } catch (err) {
    // Undecodable requests already arrive as InvalidArgument (see decode-errors.ts).
    await core.close(s, asConnectError(err));
  }
}
