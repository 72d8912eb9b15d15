// Replies and read state through the real server, one path each: a reply sent over gRPC seen on a
// Connect Subscribe stream and in History over gRPC-Web; MarkRead over Connect JSON (as curl would)
// told at once to the same user's gRPC Chat, Connect Subscribe and /ws streams; /ws marking read;
// ListRooms' unread counts.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { WsClient } from "../support/ws-client.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0" });
});
afterAll(async () => {
  await server.stop();
});

const as = (user: string) => ({ headers: { "x-user": user } });

test("a reply over gRPC reaches a Connect Subscribe stream and History over gRPC-Web with the seq it answers", async () => {
  const grpc = chatClient(transport(server.url, "grpc"));
  const q = (await grpc.send({ target: { case: "room", value: "replies" }, text: "who is on call?" }, as("ann"))).message!;
  const sub = new Reader(chatClient(transport(server.url, "connect")).subscribe({ rooms: ["replies"] }, as("cat")));
  await sub.until((r) => r.of("joined").length > 0, 5000, "joined");
  const a = (await grpc.send({ target: { case: "room", value: "replies" }, text: "I am", replyTo: q.seq }, as("ben"))).message!;
  expect(a.replyTo).toBe(q.seq);
  await sub.until((r) => r.messages("replies").some((m) => m.text === "I am"), 5000, "the reply");
  expect(sub.messages("replies").find((m) => m.text === "I am")?.replyTo).toBe(q.seq);
  const page = await chatClient(transport(server.url, "grpc-web", "1.1")).history({ room: "replies", afterSeq: 0n }, as("cat"));
  expect(page.messages.map((m) => [m.text, m.replyTo])).toEqual([
    ["who is on call?", 0n],
    ["I am", q.seq],
  ]);
});

test("MarkRead over Connect JSON is told to the same user's Chat, Subscribe and /ws streams; /ws marks read too; ListRooms counts what is unread", async () => {
  const grpc = chatClient(transport(server.url, "grpc"));
  for (const text of ["one", "two @dora", "three"]) await grpc.send({ target: { case: "room", value: "news" }, text }, as("ed"));
  const chat = openChat(grpc, "dora");
  const sub = new Reader(chatClient(transport(server.url, "connect")).subscribe({ rooms: ["elsewhere"] }, as("dora")));
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`, { headers: { "x-user": "dora" } });
  await chat.reader.until((r) => r.of("ready").length > 0, 5000, "Chat ready");
  await sub.until((r) => r.of("ready").length > 0, 5000, "Subscribe ready");
  await ws.until((c) => c.of("ready").length > 0, "/ws ready");

  const news = async () => (await chatClient(transport(server.url, "connect")).listRooms({}, as("dora"))).rooms.find((r) => r.name === "news");
  // Never opened: nothing is counted as unread yet.
  expect(await news()).toMatchObject({ lastReadSeq: 0n, unread: 0, unreadMentions: 0 });

  // Over Connect with JSON, as curl sends it.
  const res = await fetch(`${server.url}/chat.v1.ChatService/MarkRead`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": "dora" },
    body: JSON.stringify({ room: "news", seq: "2" }),
  });
  expect([res.status, await res.json()]).toEqual([200, { lastReadSeq: "2" }]);
  await chat.reader.until((r) => r.of("read").length > 0, 5000, "Chat told");
  await sub.until((r) => r.of("read").length > 0, 5000, "Subscribe told");
  await ws.until((c) => c.of("read").length > 0, "/ws told");
  expect([chat.reader.of("read")[0], sub.of("read")[0]].map((r) => [r.room, r.lastReadSeq])).toEqual([
    ["news", 2n],
    ["news", 2n],
  ]);
  expect(ws.of("read").map((r) => [r.room, r.lastReadSeq])).toEqual([["news", 2n]]);
  expect(await news()).toMatchObject({ lastReadSeq: 2n, unread: 1, unreadMentions: 0 });

  // /ws takes the same request; the others hear of it.
  ws.send({ kind: { case: "read", value: { room: "news", seq: 3n } } });
  await chat.reader.until((r) => r.of("read").some((x) => x.lastReadSeq === 3n), 5000, "Chat told of /ws's read");
  expect(await news()).toMatchObject({ lastReadSeq: 3n, unread: 0 });
  chat.close();
  await ws.close();
});
