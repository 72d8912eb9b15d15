// Tokens on open streams (issue 14): a stream opened with a token ends at the token's exp with
// Unauthenticated "token expired: get a new one", on every kind of stream: gRPC and gRPC-Web and
// Connect Subscribe (HTTP/2 and HTTP/1.1), Chat, the old ChatStream, and /ws. A stream with a token that is still good
// goes on receiving.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { ChatMessageSchema, ChatService as LegacyChatService, type ChatMessage } from "../../app/gen/chat/chat_pb.ts";
import { chatClient, openChat, Reader, transport, type Protocol } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { WsClient } from "../support/ws-client.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET, EDGECHAT_REQUIRE_AUTH: "1" });
});
afterAll(async () => {
  await server.stop();
});

const EXPIRED = "token expired: get a new one";

test("every kind of stream ends at its token's expiry with Unauthenticated; a stream with a good token goes on", async () => {
  // exp is in whole seconds: these tokens expire 1 to 2 seconds from now.
  const short = await mintToken("sasha", { expiresIn: 2 });
  const long = await mintToken("lena");
  const room = "expiring";
  const subscribe = (protocol: Protocol, http: "1.1" | "2", token: string) =>
    new Reader(chatClient(transport(server.url, protocol, http)).subscribe({ rooms: [room] }, { headers: bearer(token) }));
  const streams: [string, Reader][] = [
    ["gRPC Subscribe", subscribe("grpc", "2", short)],
    ["gRPC-Web Subscribe over HTTP/1.1", subscribe("grpc-web", "1.1", short)],
    ["Connect Subscribe over HTTP/2", subscribe("connect", "2", short)],
  ];
  const chat = openChat(chatClient(transport(server.url, "grpc")), undefined, bearer(short));
  await chat.send({ kind: { case: "join", value: { room } } });
  streams.push(["gRPC Chat", chat.reader]);
  // The old API's ChatStream, signed in with the token: its end comes as the call's status.
  const legacyRequests = createWritableIterable<ChatMessage>();
  const legacyEnd = (async () => {
    for await (const _ of createClient(LegacyChatService, transport(server.url, "grpc")).chatStream(legacyRequests, { headers: bearer(short) })) {
      // the replies do not matter here
    }
  })().then(
    () => undefined,
    (e) => ConnectError.from(e),
  );
  await legacyRequests.write(create(ChatMessageSchema, { user: "sasha", message: "list" }));
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`);
  await ws.opened;
  ws.raw(JSON.stringify({ auth: { token: short } }));
  const lasting = subscribe("grpc", "2", long);

  for (const [what, r] of [...streams, ["lasting", lasting] as const]) await r.until((x) => x.of("joined").length > 0, 5000, `${what} joined`);
  const opened = Date.now();

  for (const [what, r] of streams) {
    await r.finished;
    expect([what, r.error?.code, r.error?.rawMessage]).toEqual([what, Code.Unauthenticated, EXPIRED]);
  }
  const legacy = await legacyEnd;
  expect(["old ChatStream", legacy?.code, legacy?.rawMessage]).toEqual(["old ChatStream", Code.Unauthenticated, EXPIRED]);
  legacyRequests.close();
  await ws.finished;
  expect(ws.closed).toEqual({ code: 4401, reason: `unauthenticated: ${EXPIRED}` });
  // Within the token's second or two, and the server's one-second check.
  expect(Date.now() - opened).toBeLessThan(5000);

  // The stream with a good token is still open and receives what comes next.
  expect(lasting.done).toBe(false);
  await chatClient(transport(server.url, "connect")).send({ target: { case: "room", value: room }, text: "still here" }, { headers: bearer(long) });
  await lasting.until((x) => x.messages(room).some((m) => m.text === "still here"), 5000, "the lasting stream to get the message");
  // A call with the expired token is refused with the same words.
  const refused = await chatClient(transport(server.url, "connect"))
    .send({ target: { case: "room", value: room }, text: "late" }, { headers: bearer(short) })
    .then(
      () => undefined,
      (e) => e,
    );
  expect([refused?.code, refused?.rawMessage]).toEqual([Code.Unauthenticated, EXPIRED]);
  expect(lasting.done).toBe(false);
});

test("a Chat stream (gRPC, Connect) or /ws that refreshes its token in-band outlives the old one", async () => {
  const short = await mintToken("rita", { expiresIn: 2 });
  const fresh = await mintToken("rita", { expiresIn: 3600 });
  const room = "refreshed";
  const chats = (["grpc", "connect"] as const).map(
    (protocol) => [protocol, openChat(chatClient(transport(server.url, protocol)), undefined, bearer(short))] as const,
  );
  for (const [, c] of chats) {
    await c.send({ kind: { case: "join", value: { room } } });
    await c.send({ kind: { case: "refresh", value: { token: fresh } } });
  }
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`);
  await ws.opened;
  ws.raw(JSON.stringify({ auth: { token: short } }));
  ws.join(room);
  ws.send({ kind: { case: "refresh", value: { token: fresh } } });
  for (const [protocol, c] of chats) await c.reader.until((r) => r.of("refreshed").length === 1, 5000, `${protocol} refreshed`);
  await ws.until((c) => c.of("refreshed").length > 0, "/ws refreshed");
  // Past the old token's exp, and the server's check after it.
  await Bun.sleep(3200);
  await chatClient(transport(server.url, "connect")).send({ target: { case: "room", value: room }, text: "after the old exp" }, { headers: bearer(fresh) });
  for (const [protocol, c] of chats) {
    await c.reader.until((r) => r.messages(room).some((m) => m.text === "after the old exp"), 5000, `${protocol} to get the message`);
    expect([protocol, c.reader.done]).toEqual([protocol, false]);
    c.close();
  }
  await ws.until((c) => c.messages(room).some((m) => m.text === "after the old exp"), "/ws to get the message");
  expect(ws.closed).toBeUndefined();
  await ws.close();
}, 20_000);
