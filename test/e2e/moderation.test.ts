// Rooms with owners through the real server, one test per path rather than per rule (the rules
// are app/core/rooms.test.ts's): a private room refused on every protocol and RPC, a ban that
// reaches every kind of open stream at once, a mute, a server-wide admin's token, and blocks on
// the old ChatStream and ListOnline.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { type ChatMessage, ChatMessageSchema, ChatService as LegacyChatService } from "../../app/gen/chat/chat_pb.ts";
import { RoomChangeKind, RoomKind } from "../../app/gen/chat/v1/chat_pb.ts";
import { chatClient, failure, openChat, type Protocol, Reader, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";
import { WsClient } from "../support/ws-client.ts";

let server: ServerProcess;
const tokens: Record<string, string> = {};
beforeAll(async () => {
  server = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET, EDGECHAT_RATE_PER_SECOND: "0" });
  for (const u of ["olga", "ben", "eve", "ann", "bob"]) tokens[u] = await mintToken(u);
  tokens.root = await mintToken("root", { claims: { edgechat_admin: true } });
});
afterAll(async () => {
  await server.stop();
});

const as = (user: string, protocol: Protocol = "connect", http: "1.1" | "2" = "2") => ({
  client: chatClient(transport(server.url, protocol, http)),
  opts: { headers: bearer(tokens[user]) },
});

/** A /ws connection signed in as `user` with its token in the first frame. */
async function ws(user: string): Promise<WsClient> {
  const c = new WsClient(`ws://127.0.0.1:${server.port}/ws`);
  await c.opened;
  c.raw(JSON.stringify({ auth: { token: tokens[user] } }));
  return c;
}

test("a private room: every path answers PermissionDenied to a non-member, and ListRooms does not show it", async () => {
  const olga = as("olga");
  const made = await olga.client.createRoom({ name: "secret", kind: RoomKind.PRIVATE, title: "Secret", topic: "" }, olga.opts);
  expect([made.room?.kind, made.entry?.seq]).toEqual([RoomKind.PRIVATE, 1n]);
  const DENIED = 'room "secret" is private: an owner or admin must add you first';
  const denied = (e: { code: Code; rawMessage: string }) => [e.code, e.rawMessage];

  // Unary calls, over Connect (JSON, as curl would), gRPC and gRPC-Web.
  const json = chatClient(transport(server.url, "connect", "1.1", false));
  const opts = as("eve").opts;
  expect(denied(await failure(json.send({ target: { case: "room", value: "secret" }, text: "hi" }, opts)))).toEqual([Code.PermissionDenied, DENIED]);
  expect(denied(await failure(as("eve", "grpc").client.history({ room: "secret" }, opts)))).toEqual([Code.PermissionDenied, DENIED]);
  expect(denied(await failure(as("eve", "grpc-web").client.listOnline({ room: "secret" }, opts)))).toEqual([Code.PermissionDenied, DENIED]);
  expect(denied(await failure(json.getRoom({ room: "secret" }, opts)))).toEqual([Code.PermissionDenied, DENIED]);
  expect((await json.listRooms({}, opts)).rooms.map((r) => r.name)).not.toContain("secret");
  expect((await olga.client.listRooms({}, olga.opts)).rooms.find((r) => r.name === "secret")?.title).toBe("Secret");

  // Streams: Subscribe (gRPC-Web over HTTP/1.1) ends; Chat (gRPC) answers join and typing with error events.
  const sub = new Reader(as("eve", "grpc-web", "1.1").client.subscribe({ rooms: ["secret"] }, opts));
  await sub.finished;
  expect(denied(sub.error!)).toEqual([Code.PermissionDenied, DENIED]);
  const chat = openChat(as("eve", "grpc").client, undefined, opts.headers);
  await chat.send({ kind: { case: "join", value: { room: "secret" } } });
  await chat.send({ kind: { case: "typing", value: { room: "secret" } } });
  await chat.reader.until((r) => r.of("error").length >= 2, 5000, "two refusals");
  expect(chat.reader.of("error").map((e) => [e.code, e.text, e.room])).toEqual([
    ["permission_denied", DENIED, "secret"],
    ["permission_denied", DENIED, "secret"],
  ]);
  chat.close();
  // /ws
  const w = await ws("eve");
  w.join("secret");
  await w.until((c) => c.errors().length > 0, "/ws refusal");
  expect(w.errors()[0]).toMatchObject({ code: "permission_denied", text: DENIED, room: "secret" });
  await w.close();

  // Once added, the same user reads and writes it.
  await olga.client.addMember({ room: "secret", user: "eve" }, olga.opts);
  await json.send({ target: { case: "room", value: "secret" }, text: "thanks for the invite" }, opts);
});

test("a ban ends the room for the user's Chat, Subscribe and /ws streams at once, with the reason; a mute refuses Send with its end", async () => {
  const olga = as("olga");
  await olga.client.createRoom({ name: "town", kind: RoomKind.PUBLIC }, olga.opts);
  const ben = as("ben", "grpc");
  const chat = openChat(ben.client, undefined, ben.opts.headers);
  await chat.send({ kind: { case: "join", value: { room: "town" } } });
  const sub = new Reader(as("ben", "connect").client.subscribe({ rooms: ["town"] }, ben.opts));
  const w = await ws("ben");
  w.join("town");
  await chat.reader.until((r) => r.of("joined").length > 0, 5000, "Chat joined");
  await sub.until((r) => r.of("joined").length > 0, 5000, "Subscribe joined");
  await w.joined("town");

  // The mute first: Send names its end; the streams stay.
  const mutedUntil = Date.now() + 60_000;
  await olga.client.mute({ room: "town", user: "ben", until: timestampFromMs(mutedUntil) }, olga.opts);
  const muted = await failure(as("ben", "grpc").client.send({ target: { case: "room", value: "town" }, text: "hi" }, ben.opts));
  expect([muted.code, muted.rawMessage]).toEqual([Code.PermissionDenied, `you are muted in room "town" until ${new Date(mutedUntil).toISOString()}`]);

  const banned = await olga.client.ban({ room: "town", user: "ben", reason: "spam links" }, olga.opts);
  expect([banned.entry?.change?.kind, banned.entry?.from]).toEqual([RoomChangeKind.BANNED, "olga"]);
  const REASON = 'you are banned from room "town" for good: spam links';
  await chat.reader.until((r) => r.of("error").length > 0, 5000, "Chat told");
  expect(chat.reader.of("error").map((e) => [e.code, e.text, e.room])).toEqual([["permission_denied", REASON, "town"]]);
  await sub.finished;
  expect([sub.error?.code, sub.error?.rawMessage]).toEqual([Code.PermissionDenied, REASON]);
  await w.until((c) => c.errors().length > 0, "/ws told");
  expect(w.errors()[0]).toMatchObject({ code: "permission_denied", text: REASON, room: "town" });

  // Out, and kept out; the others in the room saw the ban in order with the messages.
  await chat.send({ kind: { case: "join", value: { room: "town" } } });
  await chat.reader.until((r) => r.of("error").length > 1, 5000, "rejoin refused");
  expect(chat.reader.of("error")[1].text).toBe(REASON);
  const history = await olga.client.history({ room: "town", afterSeq: 0n }, olga.opts);
  expect(history.messages.map((m) => RoomChangeKind[m.change?.kind ?? 0])).toEqual(["CREATED", "MUTED", "BANNED"]);
  chat.close();
  await w.close();
});

test("a server-wide admin (the edgechat_admin claim) moderates a room they are not in; the claim alone is not a member's right elsewhere", async () => {
  const olga = as("olga");
  await olga.client.createRoom({ name: "closed", kind: RoomKind.PRIVATE }, olga.opts);
  const root = as("root");
  await root.client.addMember({ room: "closed", user: "ben" }, root.opts);
  const members = await root.client.listMembers({ room: "closed" }, root.opts);
  expect(members.members.map((m) => m.user)).toEqual(["ben", "olga"]);
  // A token without the claim, for a user who is no owner: refused.
  const e = await failure(as("ben").client.addMember({ room: "closed", user: "eve" }, as("ben").opts));
  expect([e.code, e.rawMessage]).toEqual([Code.PermissionDenied, `only the room's owners and admins may add members in room "closed"`]);
});

test("blocks: the old ChatStream's DM to someone who blocked you is not sent; ListOnline hides each from the other", async () => {
  const ann = as("ann");
  await ann.client.block({ user: "bob" }, ann.opts);
  expect((await ann.client.listBlocked({}, ann.opts)).users).toEqual(["bob"]);
  const annChat = openChat(as("ann", "grpc").client, undefined, ann.opts.headers);
  await annChat.send({ kind: { case: "join", value: { room: "lobby" } } });
  await annChat.reader.until((r) => r.of("joined").length > 0, 5000, "ann joined");

  // Bob on the old API, signed in with his token.
  const requests = createWritableIterable<ChatMessage>();
  const replies: ChatMessage[] = [];
  void (async () => {
    for await (const m of createClient(LegacyChatService, transport(server.url, "grpc")).chatStream(requests, { headers: bearer(tokens.bob) })) replies.push(m);
  })().catch(() => {});
  await requests.write(create(ChatMessageSchema, { user: "bob", message: "connect ann" }));
  // ann is online, but her block hides it from bob.
  await eventually(() => replies.some((r) => r.message.startsWith("Connected to ann")), 5000, "connected");
  expect(replies.find((r) => r.message.startsWith("Connected to ann"))?.message).toBe(
    "Connected to ann, who is not online now; your messages are kept for them.",
  );
  await requests.write(create(ChatMessageSchema, { user: "bob", message: "are you there?" }));
  await eventually(() => replies.some((r) => r.message.startsWith("Not sent")), 5000, "the old API's refusal");
  expect(replies.find((r) => r.message.startsWith("Not sent"))?.message).toBe('Not sent: you cannot send direct messages to "ann"');
  expect(annChat.reader.messages().some((m) => m.text === "are you there?")).toBe(false);

  const bob = as("bob");
  const bobChat = openChat(as("bob", "grpc").client, undefined, bob.opts.headers);
  await bobChat.send({ kind: { case: "join", value: { room: "lobby" } } });
  await bobChat.reader.until((r) => r.of("joined").length > 0, 5000, "bob joined");
  expect((await ann.client.listOnline({ room: "lobby" }, ann.opts)).users.map((u) => u.user)).toEqual(["ann"]);
  expect((await bob.client.listOnline({}, bob.opts)).users.map((u) => u.user)).not.toContain("ann");
  expect(annChat.reader.of("presence").map((p) => p.user)).not.toContain("bob");
  requests.close();
  annChat.close();
  bobChat.close();
});
