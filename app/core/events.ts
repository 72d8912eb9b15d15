// Constructors for the events a session streams.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeName } from "../rules/codes.ts";
import { ChatEventSchema, PresenceAction, type ChatEvent, type Message } from "../gen/chat/v1/chat_pb.ts";

export const messageEvent = (message: Message): ChatEvent => create(ChatEventSchema, { kind: { case: "message", value: message } });

export const ackEvent = (clientMsgId: string, message: Message | undefined): ChatEvent =>
  create(ChatEventSchema, { kind: { case: "ack", value: { clientMsgId, message } } });

export const readyEvent = (user: string, region: string, sessionId: string): ChatEvent =>
  create(ChatEventSchema, { kind: { case: "ready", value: { user, region, sessionId } } });

export const joinedEvent = (room: string, lastSeq: bigint): ChatEvent => create(ChatEventSchema, { kind: { case: "joined", value: { room, lastSeq } } });

export const presenceEvent = (room: string, user: string, joined: boolean, region: string): ChatEvent =>
  create(ChatEventSchema, {
    kind: {
      case: "presence",
      value: { room, user, region, action: joined ? PresenceAction.JOINED : PresenceAction.LEFT },
    },
  });

export const typingEvent = (room: string, user: string): ChatEvent => create(ChatEventSchema, { kind: { case: "typing", value: { room, user } } });

export const pongEvent = (nonce: string): ChatEvent => create(ChatEventSchema, { kind: { case: "pong", value: { nonce } } });

export const heartbeatEvent = (): ChatEvent => create(ChatEventSchema, { kind: { case: "heartbeat", value: {} } });

export const readEvent = (room: string, lastReadSeq: bigint): ChatEvent => create(ChatEventSchema, { kind: { case: "read", value: { room, lastReadSeq } } });

export const refreshedEvent = (expiresAtMs: number): ChatEvent =>
  create(ChatEventSchema, { kind: { case: "refreshed", value: { expiresAt: timestampFromMs(expiresAtMs) } } });

export const errorEvent = (err: ConnectError, clientMsgId = "", room = ""): ChatEvent =>
  create(ChatEventSchema, {
    kind: { case: "error", value: { clientMsgId, room, code: codeName(err.code), text: err.rawMessage } },
  });

/** Errors that are not ConnectErrors are bugs: they reach the client as Internal, without details. */
export function asConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
