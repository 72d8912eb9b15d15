// A server with a key (EDGECHAT_JWT_SECRET): every chat RPC needs a valid HS256 token, the user is
// its subject and nothing else, and a refusal says why. In every test a healthy session (a signed-in
// user on an open Chat stream) keeps receiving the messages sent after the refused calls.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { ChatMessageSchema, ChatService as LegacyChatService, type ChatMessage } from "../../app/gen/chat/chat_pb.ts";
import { ChatService } from "../../app/gen/chat/v1/chat_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../../app/gen/grpc/health/v1/health_pb.ts";
import { chatClient, openChat, transport, type Protocol, failure } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";

type Chat = Client<typeof ChatService>;
type ChatHandle = ReturnType<typeof openChat>;

let server: ServerProcess;
let client: Chat;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET, EDGECHAT_REQUIRE_AUTH: "1" });
  client = chatClient(transport(server.url, "connect"));
});
afterAll(async () => {
  await server.stop();
});

/** A healthy session: `user`, signed in, on an open Chat stream in `room`. */
async function healthySession(room: string, user = "hana"): Promise<ChatHandle> {
  const h = openChat(client, undefined, bearer(await mintToken(user)));
  await h.send({ kind: { case: "join", value: { room } } });
  await h.reader.until((r) => r.of("joined").some((j) => j.room === room), 5000, `${user} joined ${room}`);
  expect(h.reader.of("ready")[0].user).toBe(user);
  return h;
}

/** Posts `text` as a signed-in user and waits for the healthy session to receive it. */
async function stillDelivers(h: ChatHandle, room: string, text: string): Promise<void> {
  const res = await client.send({ target: { case: "room", value: room }, text }, { headers: bearer(await mintToken("sam")) });
  expect(res.message?.from).toBe("sam");
  await h.reader.until((r) => r.messages(room).some((m) => m.text === text && m.seq === res.message?.seq), 5000, `"${text}" delivered`);
  expect(h.reader.done).toBe(false);
}

async function closeAll(...hs: ChatHandle[]): Promise<void> {
  for (const h of hs) h.close();
  await Promise.all(hs.map((h) => h.reader.finished));
  for (const h of hs) expect(h.reader.error).toBeUndefined();
}

describe("refused credentials: Unauthenticated, with the reason", () => {
  const send = (room: string, headers: Record<string, string>) =>
    client.send({ target: { case: "room", value: room }, text: "should not be stored" }, { headers });

  test("no authorization header, on every protocol; x-user alone is not a credential", async () => {
    const room = "no-header";
    const h = await healthySession(room);
    for (const protocol of ["connect", "grpc", "grpc-web"] as Protocol[]) {
      const c = chatClient(transport(server.url, protocol));
      const e = await failure(c.send({ target: { case: "room", value: room }, text: "anon" }));
      expect(e.code).toBe(Code.Unauthenticated);
      expect(e.rawMessage).toBe("missing credentials: send the header `authorization: Bearer <JWT>`");
    }
    const dev = await failure(send(room, { "x-user": "mallory" }));
    expect(dev.code).toBe(Code.Unauthenticated);
    expect(dev.rawMessage).toContain("missing credentials");
    const notBearer = await failure(send(room, { authorization: `Basic ${btoa("alice:pw")}` }));
    expect(notBearer.code).toBe(Code.Unauthenticated);
    expect(notBearer.rawMessage).toContain("expected `Bearer <JWT>`");
    const garbage = await failure(send(room, { authorization: "Bearer not.a.jwt" }));
    expect(garbage.code).toBe(Code.Unauthenticated);
    expect(garbage.rawMessage).toBe("token is malformed");

    // Streams are refused the same way, before any event.
    const anon = openChat(client, undefined);
    await anon.reader.finished;
    expect(anon.reader.error?.code).toBe(Code.Unauthenticated);
    expect(anon.reader.error?.rawMessage).toContain("missing credentials");
    expect(anon.reader.events).toEqual([]);

    expect((await client.history({ room }, { headers: bearer(await mintToken("hana")) })).messages).toEqual([]);
    await stillDelivers(h, room, "after anonymous calls");
    await closeAll(h);
  });

  test("an expired token", async () => {
    const room = "expired";
    const h = await healthySession(room);
    const token = await mintToken("alice", { expiresIn: -60 });
    const e = await failure(send(room, bearer(token)));
    expect(e.code).toBe(Code.Unauthenticated);
    expect(e.rawMessage).toBe("token expired: get a new one");
    const stream = openChat(client, undefined, bearer(token));
    await stream.reader.finished;
    expect(stream.reader.error?.code).toBe(Code.Unauthenticated);
    expect(stream.reader.error?.rawMessage).toContain("expired");
    // The server logs each refusal with its reason.
    await eventually(() => server.logs.some((l) => l.msg === "auth failed" && l.reason === "token expired: get a new one"), 5000, "the log line");
    await stillDelivers(h, room, "after an expired token");
    await closeAll(h);
  });

  test("a token signed with another secret, or with another algorithm", async () => {
    const room = "bad-signature";
    const h = await healthySession(room);
    const forged = await mintToken("alice", { secret: "not-the-servers-secret-but-just-as-long-as-it" });
    const e = await failure(send(room, bearer(forged)));
    expect(e.code).toBe(Code.Unauthenticated);
    expect(e.rawMessage).toBe("token signature is invalid");
    await eventually(() => server.logs.some((l) => l.msg === "auth failed" && l.reason === "token signature is invalid"), 5000, "the log line");
    const hs512 = await mintToken("alice", { alg: "HS512" });
    const alg = await failure(send(room, bearer(hs512)));
    expect(alg.code).toBe(Code.Unauthenticated);
    expect(alg.rawMessage).toContain("algorithm is not allowed");
    await stillDelivers(h, room, "after a forged signature");
    await closeAll(h);
  });

  test("a token without exp, or without a usable sub", async () => {
    const room = "missing-claims";
    const h = await healthySession(room);
    const forever = await failure(send(room, bearer(await mintToken("alice", { expiresIn: null }))));
    expect(forever.code).toBe(Code.Unauthenticated);
    expect(forever.rawMessage).toBe('token rejected: missing required "exp" claim');
    const nobody = await failure(send(room, bearer(await mintToken(undefined))));
    expect(nobody.code).toBe(Code.Unauthenticated);
    expect(nobody.rawMessage).toBe('token rejected: missing required "sub" claim');
    const badSub = await failure(send(room, bearer(await mintToken("alice smith"))));
    expect(badSub.code).toBe(Code.Unauthenticated);
    expect(badSub.rawMessage).toContain("sub");
    expect(badSub.rawMessage).toContain("1 to 64 characters");
    await stillDelivers(h, room, "after tokens with missing claims");
    await closeAll(h);
  });
});

describe("the user is the token's subject", () => {
  test("a forged x-user header is ignored: the stored and delivered message is from the token's user", async () => {
    const room = "forged-from";
    const h = await healthySession(room);
    const alice = bearer(await mintToken("alice"));
    const res = await client.send({ target: { case: "room", value: room }, text: "who am I" }, { headers: { ...alice, "x-user": "mallory" } });
    expect(res.message?.from).toBe("alice");
    const [m] = await h.reader.until(
      (r) => {
        const ms = r.messages(room).filter((x) => x.text === "who am I");
        return ms.length === 1 ? ms : undefined;
      },
      5000,
      "alice's message",
    );
    expect(m.from).toBe("alice");
    const history = await client.history({ room }, { headers: alice });
    expect(history.messages.map((x) => [x.from, x.text])).toEqual([["alice", "who am I"]]);

    // On a stream too: the session is alice's whatever x-user says.
    const s = openChat(client, "mallory", alice);
    const [ready] = await s.reader.until((r) => (r.of("ready").length === 1 ? r.of("ready") : undefined), 5000, "ready");
    expect(ready.user).toBe("alice");
    await s.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "still me", clientMsgId: "s1" } } });
    const [ack] = await s.reader.until((r) => (r.of("ack").length === 1 ? r.of("ack") : undefined), 5000, "ack");
    expect(ack.message?.from).toBe("alice");
    // And a direct message lands in alice's DM room, not mallory's.
    const dm = await client.send({ target: { case: "toUser", value: "bob" }, text: "hi bob" }, { headers: { ...alice, "x-user": "mallory" } });
    expect(dm.message?.room).toBe("dm:alice:bob");
    await stillDelivers(h, room, "after a forged x-user");
    await closeAll(s, h);
  });

  test("the old API: a first message naming another user is PermissionDenied", async () => {
    const room = "legacy-watch";
    const h = await healthySession(room);
    const legacy = createClient(LegacyChatService, transport(server.url, "grpc"));
    const alice = bearer(await mintToken("alice"));
    const msg = (init: MessageInitShape<typeof ChatMessageSchema>) => create(ChatMessageSchema, init);

    const forged = createWritableIterable<ChatMessage>();
    const received: ChatMessage[] = [];
    const call = (async () => {
      for await (const m of legacy.chatStream(forged, { headers: alice })) received.push(m);
    })();
    await forged.write(msg({ user: "mallory", message: "list" }));
    const e = await failure(call);
    forged.close();
    expect(e.code).toBe(Code.PermissionDenied);
    expect(e.rawMessage).toBe('you are signed in as "alice" but the first message names "mallory"');
    expect(received).toEqual([]);

    // The same call naming alice, or nobody, works and answers as the server.
    const honest = createWritableIterable<ChatMessage>();
    const replies: ChatMessage[] = [];
    const ok = (async () => {
      for await (const m of legacy.chatStream(honest, { headers: alice })) replies.push(m);
    })();
    await honest.write(msg({ user: "alice", message: "hello?" }));
    await eventually(() => replies.length === 1, 5000, "the server's reply");
    expect(replies[0].user).toBe("Server");
    expect(replies[0].targetId).toBe("alice");
    expect(replies[0].message).toContain("no chat partner yet");
    honest.close();
    await ok;

    // Without a token the old API is refused before its first message is read.
    const anon = createWritableIterable<ChatMessage>();
    const refused = (async () => {
      for await (const _ of legacy.chatStream(anon)) {
        // nothing arrives
      }
    })();
    void anon.write(msg({ user: "alice", message: "list" })).catch(() => {});
    const u = await failure(refused);
    anon.close();
    expect(u.code).toBe(Code.Unauthenticated);
    await stillDelivers(h, room, "after a forged first message");
    await closeAll(h);
  });
});

test("health checks need no token", async () => {
  const room = "health-watch";
  const h = await healthySession(room);
  for (const protocol of ["grpc", "connect", "grpc-web"] as Protocol[]) {
    const health = createClient(Health, transport(server.url, protocol));
    const res = await health.check({ service: "" });
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const chat = await health.check({ service: "chat.v1.ChatService" });
    expect(chat.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  }
  const http = await fetch(`${server.url}/healthz`);
  expect(http.status).toBe(200);
  expect(await http.json()).toEqual({ status: "ok" });
  await stillDelivers(h, room, "after health checks");
  await closeAll(h);
});

test("EDGECHAT_REQUIRE_AUTH without a key: the server refuses to start, and says why", async () => {
  let error: unknown;
  try {
    const s = await startServer({ EDGECHAT_REQUIRE_AUTH: "1" });
    await s.stop();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(Error);
  const text = (error as Error).message;
  expect(text).toContain("server exited before listening (code 1)");
  expect(text).toContain("EDGECHAT_REQUIRE_AUTH is set but no key is: set EDGECHAT_JWT_SECRET or EDGECHAT_JWKS_URL");
  // The reason is one JSON log line at level error.
  const logs = JSON.parse(text.slice(text.indexOf("logs: ") + "logs: ".length)) as Record<string, unknown>[];
  const line = logs.find((l) => l.level === "error");
  expect(line?.msg).toBe("cannot start");
  expect(JSON.stringify(line)).toContain("EDGECHAT_REQUIRE_AUTH is set but no key is");
  expect(logs.some((l) => l.msg === "listening")).toBe(false);
});
