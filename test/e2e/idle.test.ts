// An idle stream with a subscriber stays open: the server sends heartbeats rather than timing out.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_HEARTBEAT_SECONDS: "1" });
});
afterAll(async () => {
  await server.stop();
});

test("idle Chat (HTTP/2) and Subscribe (HTTP/1.1) streams get heartbeats and still deliver", async () => {
  const chat = openChat(chatClient(transport(server.url, "grpc")), "ann");
  await chat.send({ kind: { case: "join", value: { room: "quiet" } } });
  const h1 = chatClient(transport(server.url, "connect", "1.1"));
  const abort = new AbortController();
  const sub = new Reader(h1.subscribe({ rooms: ["quiet"] }, { headers: { "x-user": "ben" }, signal: abort.signal }));
  for (const r of [chat.reader, sub]) await r.until((x) => x.of("heartbeat").length >= 2, 8000, "two heartbeats");
  expect(chat.reader.done).toBe(false);
  expect(sub.done).toBe(false);
  await h1.send({ target: { case: "room", value: "quiet" }, text: "still there?" }, { headers: { "x-user": "cat" } });
  for (const r of [chat.reader, sub]) await r.until((x) => x.messages("quiet").length === 1);
  chat.close();
  abort.abort();
  await chat.reader.finished;
  await sub.finished;
});
