// The Chat stream over the WebSocket gateway at /ws: each frame is one ChatRequest (client to
// server) or ChatEvent (server to client) in protobuf JSON. Credentials go in the upgrade request's
// headers (`authorization`, or `x-user` in dev mode).
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromName } from "../rules/codes.ts";
import WebSocket from "ws";
import { ChatEventSchema, ChatRequestSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { Channel } from "./channel.ts";
import type { ChatRequestInit, ChatStream } from "./connection.ts";

/** ws://host:port/ws for http://host:port (wss for https). */
export function wsUrl(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = u.pathname.replace(/\/$/, "") + "/ws";
  return u.toString();
}

export function openWsChat(baseUrl: string, headers: Record<string, string>): ChatStream {
  const ws = new WebSocket(wsUrl(baseUrl), { headers });
  const events = new Channel<ChatEvent>();
  const pending: string[] = [];
  let closing = false;
  ws.on("open", () => {
    for (const frame of pending.splice(0)) ws.send(frame);
    if (closing) ws.close(1000);
  });
  ws.on("message", (data) => {
    try {
      events.push(fromJsonString(ChatEventSchema, data.toString(), { ignoreUnknownFields: true }));
    } catch (err) {
      events.end(new ConnectError(`websocket: cannot decode a frame: ${(err as Error).message}`, Code.Internal));
      ws.terminate();
    }
  });
  ws.on("error", (err) => events.end(new ConnectError(`websocket: ${err.message}`, Code.Unavailable)));
  ws.on("close", (code, reason) => {
    if (code === 1000 || (closing && code === 1005)) events.end();
    else events.end(closeError(code, reason.toString()));
  });
  return {
    send(req: ChatRequestInit) {
      const frame = toJsonString(ChatRequestSchema, create(ChatRequestSchema, req));
      if (ws.readyState === WebSocket.CONNECTING) pending.push(frame);
      else if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    },
    events,
    close() {
      closing = true;
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    abort() {
      closing = true;
      ws.terminate();
      events.end();
    },
  };
}

/** The gateway closes a failed session with the reason "<connect code>: <message>". */
export function closeError(closeCode: number, reason: string): ConnectError {
  const m = /^([a-z_]+): (.*)$/s.exec(reason);
  const code = m ? codeFromName(m[1]) : undefined;
  if (m && code !== undefined) return new ConnectError(m[2], code);
  return new ConnectError(`websocket closed (${closeCode})${reason ? `: ${reason}` : ""}`, Code.Unavailable);
}
