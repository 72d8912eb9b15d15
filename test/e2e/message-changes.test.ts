// Edits, deletes and reactions through the real server, one path each: EditMessage from grpc-js
// (the .proto files, no generated code), React over Connect JSON as curl sends it, DeleteMessage over
// gRPC-Web on HTTP/1.1; the same three as requests on a gRPC Chat stream and on /ws, answered with
// acks; every change live on a Connect Subscribe stream with the message attached, and again on a
// resume with since_seq.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { UpdateKind } from "../../app/gen/chat/v1/chat_pb.ts";
import { chatClient, failure, openChat, Reader, transport } from "../support/clients.ts";
import { asUser, closeAllClients, connect, services, unary } from "../support/grpc-js.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { WsClient } from "../support/ws-client.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0" });
});
afterAll(async () => {
  closeAllClients();
  await server.stop();
});

const as = (user: string) => ({ headers: { "x-user": user } });

test("the unary RPCs on three protocols, each change live on a Subscribe stream and again on resume", async () => {
  const connectClient = chatClient(transport(server.url, "connect"));
  await connectClient.send({ target: { case: "room", value: "changes" }, text: "teh plan" }, as("ann"));
  const sub = new Reader(connectClient.subscribe({ rooms: ["changes"], sinceSeq: { changes: 0n } }, as("cat")));
  await sub.until((r) => r.messages("changes").length === 1, 5000, "the message");

  const grpcJs = connect(services.chatV1, server.port);
  const edited = await unary(grpcJs, "EditMessage", { room: "changes", seq: "1", text: "the plan", client_msg_id: "e1" }, asUser("ann"));
  expect(edited.message).toMatchObject({ seq: "1", text: "the plan", version: "1" });
  expect(edited.entry.update).toMatchObject({ kind: "UPDATE_KIND_EDITED", target_seq: "1", version: "1" });
  expect(edited.entry.update.message.text).toBe("the plan");
  const refused = await failure(connectClient.editMessage({ room: "changes", seq: 1n, text: "mine now" }, as("ben")));
  expect([refused.code, refused.rawMessage]).toEqual([7, 'only its author may edit message 1 of room "changes"']);

  const res = await fetch(`${server.url}/chat.v1.ChatService/React`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": "ben" },
    body: JSON.stringify({ room: "changes", seq: "1", emoji: "👍" }),
  });
  const reacted = await res.json();
  expect([res.status, reacted.message.reactions]).toEqual([200, [{ emoji: "👍", count: 1, users: ["ben"] }]]);
  expect(reacted.entry.update).toMatchObject({ kind: "UPDATE_KIND_REACTION_ADDED", emoji: "👍", targetSeq: "1" });

  const deleted = await chatClient(transport(server.url, "grpc-web", "1.1")).deleteMessage({ room: "changes", seq: 1n }, as("ann"));
  expect(deleted.message).toMatchObject({ deleted: true, text: "", reactions: [] });

  await sub.until((r) => r.messages("changes").length === 4, 5000, "three changes live");
  const live = sub.messages("changes").slice(1);
  expect(live.map((m) => [m.seq, m.update?.kind, m.update?.message?.text, m.update?.message?.reactions.length, m.update?.message?.deleted])).toEqual([
    [2n, UpdateKind.EDITED, "the plan", 0, false],
    [3n, UpdateKind.REACTION_ADDED, "the plan", 1, false],
    [4n, UpdateKind.DELETED, "", 0, true],
  ]);
  const resumed = new Reader(chatClient(transport(server.url, "grpc")).subscribe({ rooms: ["changes"], sinceSeq: { changes: 1n } }, as("dan")));
  await resumed.until((r) => r.messages("changes").length === 3, 5000, "the changes on resume");
  // Read now, every entry carries the message as it is now: deleted, no text.
  expect(resumed.messages("changes").map((m) => [m.seq, m.update?.kind, m.update?.message?.deleted, m.update?.message?.text])).toEqual([
    [2n, UpdateKind.EDITED, true, ""],
    [3n, UpdateKind.REACTION_ADDED, true, ""],
    [4n, UpdateKind.DELETED, true, ""],
  ]);
});

test("edit, react and delete as requests on a gRPC Chat stream and on /ws, answered with acks or errors", async () => {
  const grpc = chatClient(transport(server.url, "grpc"));
  const chat = openChat(grpc, "eve");
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`, { headers: { "x-user": "fay" } });
  await chat.reader.until((r) => r.of("ready").length > 0, 5000, "Chat ready");
  await ws.until((c) => c.of("ready").length > 0, "/ws ready");
  await chat.send({ kind: { case: "join", value: { room: "stream-changes" } } });
  ws.send({ kind: { case: "join", value: { room: "stream-changes" } } });
  await chat.reader.until((r) => r.of("joined").length > 0, 5000, "Chat joined");
  await ws.until((c) => c.of("joined").length > 0, "/ws joined");
  await chat.send({ kind: { case: "send", value: { target: { case: "room", value: "stream-changes" }, text: "draft", clientMsgId: "s1" } } });
  await ws.until((c) => c.messages("stream-changes").length === 1, "the message on /ws");

  await chat.send({ kind: { case: "edit", value: { room: "stream-changes", seq: 1n, text: "final", clientMsgId: "c1" } } });
  await chat.reader.until((r) => r.of("ack").some((a) => a.clientMsgId === "c1"), 5000, "Chat ack of the edit");
  ws.send({ kind: { case: "react", value: { room: "stream-changes", seq: 1n, emoji: "🎉", clientMsgId: "w1" } } });
  ws.send({ kind: { case: "edit", value: { room: "stream-changes", seq: 1n, text: "not yours", clientMsgId: "w2" } } });
  await ws.until((c) => c.of("ack").some((a) => a.clientMsgId === "w1") && c.of("error").length > 0, "/ws ack and error");
  expect(ws.of("error").map((e) => [e.clientMsgId, e.code, e.text, e.room])).toEqual([
    ["w2", "permission_denied", 'only its author may edit message 1 of room "stream-changes"', "stream-changes"],
  ]);
  await chat.send({ kind: { case: "delete", value: { room: "stream-changes", seq: 1n, clientMsgId: "c2" } } });
  await chat.reader.until((r) => r.of("ack").some((a) => a.clientMsgId === "c2"), 5000, "Chat ack of the delete");
  const acks = chat.reader.of("ack").filter((a) => a.clientMsgId.startsWith("c"));
  expect(acks.map((a) => [a.clientMsgId, a.message?.update?.kind, a.message?.update?.message?.deleted])).toEqual([
    ["c1", UpdateKind.EDITED, false],
    ["c2", UpdateKind.DELETED, true],
  ]);
  await ws.until((c) => c.messages("stream-changes").length === 4, "every change on /ws");
  expect(ws.messages("stream-changes").map((m) => [m.seq, m.update?.kind ?? 0])).toEqual([
    [1n, 0],
    [2n, UpdateKind.EDITED],
    [3n, UpdateKind.REACTION_ADDED],
    [4n, UpdateKind.DELETED],
  ]);
  chat.close();
  await ws.close();
});
