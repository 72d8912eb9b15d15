// The WebSocket gateway at /ws, against the real server with the `ws` client: chat and presence, a
// direct message with a gRPC user, resume, bad frames, a reader that stops reading, heartbeats,
// drain, TLS, and authentication with a key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import { create, toJsonString } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { WebSocket } from "ws";
import { ChatRequestSchema, ChatService, PresenceAction } from "../../app/gen/chat/v1/chat_pb.ts";
import { chatClient, openChat, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { selfSignedCert } from "../support/tls.ts";
import { scrape } from "../support/metrics.ts";
import { WsClient } from "../support/ws-client.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";

type Chat = Client<typeof ChatService>;
const wsUrl = (server: ServerProcess, query = "") => `ws://127.0.0.1:${server.port}/ws${query}`;

/** A signed-in session (dev mode: ?user=) that has joined `room`. */
async function session(server: ServerProcess, user: string, room?: string): Promise<WsClient> {
  const c = new WsClient(wsUrl(server, `?user=${user}`));
  await c.until((x) => x.of("ready")[0], `${user} ready`);
  expect(c.of("ready")[0].user).toBe(user);
  if (room) {
    c.join(room);
    await c.joined(room);
  }
  return c;
}

const asUser = (user: string) => ({ headers: { "x-user": user } });

async function metric(server: ServerProcess, series: string): Promise<number | undefined> {
  return (await scrape(server.metricsUrl)).get(series);
}

describe("dev mode", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    server = await startServer();
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  test("two users chat: join, send and ack, each message once in seq order, presence, typing, ping", async () => {
    const room = "ws-lobby";
    const alice = await session(server, "alice", room);
    // bob signs in with the x-user header on the upgrade request.
    const bob = new WsClient(wsUrl(server), { headers: { "x-user": "bob" } });
    await bob.until((c) => c.of("ready")[0], "bob ready");
    expect(bob.of("ready")[0].user).toBe("bob");
    bob.join(room);
    expect((await bob.joined(room)).lastSeq).toBe(0n);
    await alice.until((c) => c.presence(room, "bob", PresenceAction.JOINED)[0], "bob's presence");

    for (let i = 1; i <= 5; i++) alice.say(room, `hello ${i}`, `a-${i}`);
    const acks = await alice.until((c) => (c.of("ack").length === 5 ? c.of("ack") : undefined), "5 acks");
    expect(acks.map((a) => a.clientMsgId)).toEqual(["a-1", "a-2", "a-3", "a-4", "a-5"]);
    expect(acks.map((a) => Number(a.message?.seq))).toEqual([1, 2, 3, 4, 5]);
    bob.say(room, "hi alice", "b-1");
    for (const c of [alice, bob]) {
      await c.until((x) => x.messages(room).length === 6, "6 messages");
      expect(c.seqs(room)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(c.messages(room).map((m) => `${m.from}: ${m.text}`)).toEqual([
        "alice: hello 1",
        "alice: hello 2",
        "alice: hello 3",
        "alice: hello 4",
        "alice: hello 5",
        "bob: hi alice",
      ]);
    }
    // The same messages as history holds, read over Connect.
    const page = await client.history({ room }, asUser("carl"));
    expect(page.messages.map((m) => m.id)).toEqual(bob.messages(room).map((m) => m.id));

    bob.send({ kind: { case: "typing", value: { room } } });
    await alice.until((c) => c.of("typing").find((t) => t.room === room && t.user === "bob"), "bob typing");
    await bob.roundTrip("n-1");
    expect(bob.of("typing")).toEqual([]); // one's own typing is not sent back

    // Both are online as websocket sessions; the metrics count them under "websocket".
    const online = await client.listOnline({ room }, asUser("carl"));
    expect(online.users.map((u) => u.user)).toEqual(["alice", "bob"]);
    expect(await metric(server, 'edgechat_sessions_open{protocol="websocket"}')).toBe(2);
    expect(await metric(server, 'edgechat_messages_accepted_total{protocol="websocket"}')).toBe(6);

    await bob.close();
    expect(bob.closed?.code).toBe(1000);
    await alice.until((c) => c.presence(room, "bob", PresenceAction.LEFT)[0], "bob's presence left");
    await eventually(async () => (await metric(server, 'edgechat_sessions_open{protocol="websocket"}')) === 1, 5000, "one session open");
    expect(alice.errors()).toEqual([]);
    expect(alice.unparsed).toEqual([]);
    await alice.close();
  });

  test("a direct message between a WebSocket user and a gRPC user, both ways", async () => {
    const carol = await session(server, "carol");
    const dave = openChat(chatClient(transport(server.url, "grpc")), "dave");
    await dave.reader.until((r) => r.of("ready")[0], 5000, "dave ready");

    carol.send({ kind: { case: "send", value: { target: { case: "toUser", value: "dave" }, text: "psst, dave", clientMsgId: "dm-1" } } });
    const ack = await carol.until((c) => c.of("ack")[0], "carol's ack");
    expect(ack.message?.room).toBe("dm:carol:dave");
    expect(ack.message?.seq).toBe(1n);
    const got = await dave.reader.until((r) => r.messages("dm:carol:dave")[0], 5000, "dave gets the DM");
    expect(got.from).toBe("carol");
    expect(got.text).toBe("psst, dave");
    expect(got.id).toBe(ack.message!.id);

    await dave.send({ kind: { case: "send", value: { target: { case: "toUser", value: "carol" }, text: "hi carol" } } });
    // carol's session joined the conversation with her own message: dave's reply comes once, seq 2.
    await carol.until((c) => c.messages("dm:carol:dave").some((m) => m.from === "dave"), "carol gets the reply");
    expect(carol.messages("dm:carol:dave").map((m) => [Number(m.seq), m.from, m.text])).toEqual([
      [1, "carol", "psst, dave"],
      [2, "dave", "hi carol"],
    ]);
    expect(carol.of("joined").filter((j) => j.room === "dm:carol:dave")).toHaveLength(1);
    await dave.reader.until((r) => r.messages("dm:carol:dave").length === 2, 5000, "dave sees both");
    expect(dave.reader.messages("dm:carol:dave").map((m) => Number(m.seq))).toEqual([1, 2]);

    // A third user cannot read the conversation over /ws either.
    const eve = await session(server, "eve");
    eve.join("dm:carol:dave");
    const denied = await eve.until((c) => c.errors()[0], "eve's error");
    expect(denied.code).toBe("permission_denied");
    expect(denied.room).toBe("dm:carol:dave");
    expect(eve.closed).toBeUndefined();

    dave.close();
    await dave.reader.finished;
    await Promise.all([carol.close(), eve.close()]);
  });

  test("resume after a reconnect with since_seq: no gap, no duplicate", async () => {
    const room = "ws-resume";
    const send = (text: string) => client.send({ target: { case: "room", value: room }, text }, asUser("gus"));
    const fay = await session(server, "fay", room);
    for (let i = 1; i <= 3; i++) await send(`m${i}`);
    await fay.until((c) => c.messages(room).length === 3, "3 messages");
    const last = Number(fay.messages(room).at(-1)!.seq);
    expect(last).toBe(3);
    await fay.close();

    for (let i = 4; i <= 6; i++) await send(`m${i}`);
    const again = await session(server, "fay");
    again.join(room, last);
    expect((await again.joined(room)).lastSeq).toBe(6n);
    // Live messages while history is being replayed: still no gap and no duplicate.
    await Promise.all([send("m7"), send("m8")]);
    await again.until((c) => c.messages(room).length >= 5, "m4..m8");
    await again.roundTrip("settle");
    expect(again.seqs(room)).toEqual([4, 5, 6, 7, 8]);
    expect(again.messages(room).map((m) => m.text)).toEqual(["m4", "m5", "m6", "m7", "m8"]);
    await again.close();
  });

  test("bad frames get an error event with the code and the connection goes on; an oversized frame closes it with 1009", async () => {
    const room = "ws-bad-frames";
    const healthy = await session(server, "hana", room);
    const victim = await session(server, "hugo", room);
    let n = 0;
    const stillDelivers = async () => {
      const text = `still here ${++n}`;
      await client.send({ target: { case: "room", value: room }, text }, asUser("sam"));
      await healthy.until((c) => c.messages(room).some((m) => m.text === text), `"${text}" delivered`);
    };
    const expectError = async (frame: string | Buffer, code: string, text: string | RegExp) => {
      const before = victim.errors().length;
      victim.raw(frame);
      const e = await victim.until((c) => c.errors()[before], `the error for ${String(frame).slice(0, 20)}`);
      expect(e.code).toBe(code);
      if (typeof text === "string") expect(e.text).toBe(text);
      else expect(e.text).toMatch(text);
      // The connection goes on: requests after it are answered.
      await victim.roundTrip(`after ${before}`);
      expect(victim.closed).toBeUndefined();
      await stillDelivers();
    };

    await expectError("not json", "invalid_argument", /^the frame is not JSON \(.+\): send one chat\.v1\.ChatRequest in protobuf JSON per text frame$/);
    await expectError('{"join": {"room": "x"', "invalid_argument", /^the frame is not JSON/);
    await expectError(
      '{"join": {"room": "x"}, "colour": "blue"}',
      "invalid_argument",
      'cannot decode message chat.v1.ChatRequest from JSON: key "colour" is unknown',
    );
    await expectError(
      '{"send": {"room": "x", "text": 5}}',
      "invalid_argument",
      "cannot decode field chat.v1.SendRequest.text from JSON: expected string, got 5",
    );
    await expectError("{}", "invalid_argument", "empty request: set one of join, leave, send, edit, delete, react, typing, ping, refresh or read");
    await expectError("[1, 2]", "invalid_argument", /^cannot decode message chat\.v1\.ChatRequest from JSON/);
    await expectError(
      Buffer.from(toJsonString(ChatRequestSchema, create(ChatRequestSchema, { kind: { case: "ping", value: { nonce: "b" } } }))),
      "invalid_argument",
      "binary frames are not accepted: send each chat.v1.ChatRequest as a text frame of protobuf JSON",
    );
    await expectError('{"auth": {"user": "mallory"}}', "failed_precondition", 'already signed in as "hugo": auth is accepted as the first frame only');
    // The limits of the core hold on /ws too.
    await expectError(JSON.stringify({ send: { room, text: "x".repeat(5000) } }), "invalid_argument", "text is 5000 bytes; the limit is 4096 bytes of UTF-8");
    await expectError(JSON.stringify({ send: { room, text: "" } }), "invalid_argument", "text is empty: send 1 or more characters");
    await expectError(
      JSON.stringify({ join: { room: "bad room" } }),
      "invalid_argument",
      'room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "bad room")',
    );
    await expectError(JSON.stringify({ leave: { room: "elsewhere" } }), "not_found", 'you are not in room "elsewhere"');
    // None of those stored anything.
    expect(healthy.messages(room).every((m) => m.from === "sam")).toBe(true);

    // A frame over EDGECHAT_MAX_REQUEST_BYTES (64 KiB) closes the connection with 1009 (message too big).
    victim.raw(JSON.stringify({ send: { room, text: "y".repeat(70_000) } }));
    await victim.finished;
    expect(victim.closed?.code).toBe(1009);
    await healthy.until((c) => c.presence(room, "hugo", PresenceAction.LEFT)[0], "hugo's session to end");
    await stillDelivers();
    expect(healthy.closed).toBeUndefined();
    expect(healthy.errors()).toEqual([]);
    expect(healthy.seqs(room)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    await healthy.close();
  });

  test("sign-in problems in dev mode close with the reason", async () => {
    // No user on the upgrade request and a first frame that is not auth.
    const anon = new WsClient(wsUrl(server));
    await anon.opened;
    anon.join("lobby");
    await anon.finished;
    expect(anon.closed).toEqual({
      code: 4401,
      reason: 'unauthenticated: not signed in: send {"auth":{"user":"<id>"}} first, or x-user or ?user= on the upgrade',
    });
    expect(anon.of("error")[0]?.code).toBe("unauthenticated");
    expect(anon.of("ready")).toEqual([]);

    // A first frame that names the user works.
    const named = new WsClient(wsUrl(server));
    await named.opened;
    named.raw('{"auth":{"user":"nina"}}');
    named.join("ws-first-frame");
    await named.joined("ws-first-frame");
    expect(named.of("ready")[0].user).toBe("nina");
    await named.close();

    // A bad user id is refused with its reason.
    const bad = new WsClient(wsUrl(server, "?user=no%20spaces"));
    await bad.finished;
    expect(bad.closed?.code).toBe(1008);
    expect(bad.closed?.reason).toBe('invalid_argument: x-user must be 1 to 64 characters of A-Z a-z 0-9 _ . - (got "no spaces")');
  });

  test("other paths and h2c upgrades are left to HTTP", async () => {
    const other = new WebSocket(`ws://127.0.0.1:${server.port}/chat`, { headers: { "x-user": "olga" } });
    const refused = await new Promise<string>((resolve) => {
      other.on("error", (err) => resolve(err.message));
      other.on("open", () => resolve("opened"));
    });
    expect(refused).toContain("404");
    // curl --http2 on cleartext asks for an h2c upgrade; the server answers over HTTP/1.1 as before.
    const curl = Bun.spawn(["curl", "-s", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", `${server.url}/healthz`], { stdout: "pipe" });
    expect(await new Response(curl.stdout).text()).toBe("200 1.1");
  });
});

describe("a reader that stops reading (session queue of 50)", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    // No rate limit, and big texts, so that the socket's buffers fill quickly.
    server = await startServer({ EDGECHAT_SESSION_QUEUE: "50", EDGECHAT_RATE_PER_SECOND: "0", EDGECHAT_MAX_TEXT_BYTES: "32768" });
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  const rssKiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, "utf8"))![1]);

  test("is closed with 1008 and resource_exhausted; the others get everything; memory stays bounded; resume has no gap", async () => {
    const room = "ws-flood";
    const healthy = await session(server, "hana", room);
    const grpcReader = openChat(chatClient(transport(server.url, "grpc")), "kai");
    await grpcReader.send({ kind: { case: "join", value: { room } } });
    await grpcReader.reader.until((r) => r.of("joined")[0], 5000, "kai joined");
    const slow = await session(server, "slow", room);
    slow.ws.pause(); // stops reading the socket: the kernel's buffers fill, then the server's
    await healthy.until((c) => c.presence(room, "slow", PresenceAction.JOINED)[0], "slow in the room");

    const left = () => healthy.presence(room, "slow", PresenceAction.LEFT).length > 0;
    // Read again as soon as the server has ended the session, to see how it closes the connection.
    const cut = eventually(left, 120_000, "slow's session to end").then(() => slow.ws.resume());

    const pad = "·".repeat(8000); // 16000 bytes of UTF-8
    for (let i = 0; i < 50; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => client.send({ target: { case: "room", value: "warm-up" }, text: `#${i + j} ${pad}` }, asUser("warmer"))),
      );
    }
    const rss0 = rssKiB();
    let rssMax = rss0;
    let sent = 0;
    // Until the server gives up on slow (about 5 MB of kernel buffers here, then 256 KiB, then 50 events).
    while (!left() && sent < 2000) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => client.send({ target: { case: "room", value: room }, text: `#${sent + i} ${pad}` }, asUser(`sender${i % 5}`))),
      );
      sent += 10;
      await healthy.until((c) => c.messages(room).length >= sent, `hana to get ${sent}`);
      rssMax = Math.max(rssMax, rssKiB());
    }
    expect(left()).toBe(true);
    await cut;
    // A few more after the cut: the others go on.
    for (let i = 0; i < 10; i++) await client.send({ target: { case: "room", value: room }, text: `#${sent++} after` }, asUser("sender0"));

    // slow gets what was buffered (seq 1.. without a gap), then the error event, then the close.
    await slow.finished;
    expect(slow.closed?.code).toBe(1008);
    expect(slow.closed?.reason).toBe("resource_exhausted: this stream fell 50 events behind and was closed; reconnect and resume with since_seq");
    const lastEvent = slow.events.at(-1)!;
    expect(lastEvent.kind.case).toBe("error");
    expect(lastEvent.kind.value).toMatchObject({
      code: "resource_exhausted",
      text: "this stream fell 50 events behind and was closed; reconnect and resume with since_seq",
    });
    const k = slow.messages(room).length;
    expect(k).toBeGreaterThan(0);
    expect(k).toBeLessThan(sent);
    expect(slow.seqs(room)).toEqual(Array.from({ length: k }, (_, i) => i + 1));

    // The others got every message once, in seq order.
    await healthy.until((c) => c.messages(room).length === sent, "hana to get all");
    await grpcReader.reader.until((r) => r.messages(room).length === sent, 10_000, "kai to get all");
    const all = Array.from({ length: sent }, (_, i) => i + 1);
    expect(healthy.seqs(room)).toEqual(all);
    expect(grpcReader.reader.messages(room).map((m) => Number(m.seq))).toEqual(all);
    expect(healthy.closed).toBeUndefined();
    // The server holds nothing for slow, and its memory stayed bounded while it was stuck (several
    // MB went through; an unbounded queue would keep all of them).
    expect((await client.listOnline({ room }, asUser("x"))).users.map((u) => u.user)).toEqual(["hana", "kai"]);
    expect(rssMax - rss0).toBeLessThan(64 * 1024);
    expect(await metric(server, 'edgechat_slow_consumers_total{protocol="websocket"}')).toBe(1);

    // Reconnected, slow resumes after the last seq it has: the rest, no gap, no duplicate, then live.
    const again = await session(server, "slow");
    again.join(room, k);
    await client.send({ target: { case: "room", value: room }, text: "live" }, asUser("sender1"));
    await again.until((c) => c.messages(room).some((m) => m.text === "live"), "slow to catch up", 10_000);
    expect(again.seqs(room)).toEqual(Array.from({ length: sent + 1 - k }, (_, i) => k + 1 + i));
    expect(again.errors()).toEqual([]);

    grpcReader.close();
    await grpcReader.reader.finished;
    await Promise.all([healthy.close(), again.close()]);
  }, 120_000);
});

describe("heartbeats and drain (EDGECHAT_HEARTBEAT_SECONDS=1)", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ EDGECHAT_HEARTBEAT_SECONDS: "1" });
  });
  afterAll(async () => {
    await server.stop();
  });

  test("pings every interval; a peer that does not answer is dropped; idle sessions get heartbeat events", async () => {
    const room = "ws-beats";
    const watcher = await session(server, "wendy", room);
    let pings = 0;
    watcher.ws.on("ping", () => pings++);

    // A raw client: it upgrades and joins, then reads but never answers a ping.
    const ghost = net.connect(server.port, "127.0.0.1");
    let bytes = Buffer.alloc(0);
    let ghostClosed = false;
    ghost.on("data", (b: Buffer) => (bytes = Buffer.concat([bytes, b])));
    ghost.on("close", () => (ghostClosed = true));
    ghost.on("error", () => {});
    ghost.write(
      `GET /ws?user=ghost HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await eventually(() => bytes.includes("\r\n\r\n"), 5000, "the 101");
    expect(bytes.toString("latin1").split("\r\n")[0]).toBe("HTTP/1.1 101 Switching Protocols");
    ghost.write(maskedText(JSON.stringify({ join: { room } })));
    await watcher.until((c) => c.presence(room, "ghost", PresenceAction.JOINED)[0], "ghost joined");

    const started = Date.now();
    await eventually(() => ghostClosed, 6000, "the ghost to be dropped");
    const frames = serverFrames(bytes.subarray(bytes.indexOf("\r\n\r\n") + 4));
    expect(frames.filter((f) => f.opcode === 0x9).length).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(5000);
    await watcher.until((c) => c.presence(room, "ghost", PresenceAction.LEFT)[0], "ghost left");

    // wendy answers pings (the ws client does) and stays; idle, she also gets heartbeat events.
    await watcher.until((c) => c.of("heartbeat").length >= 1 && pings >= 2, "pings and a heartbeat", 8000);
    expect(watcher.closed).toBeUndefined();
    await watcher.close();
  });

  test("drain closes with 1001 and a reason to resume", async () => {
    const room = "ws-drain";
    const c = await session(server, "dora", room);
    c.say(room, "before the drain", "d-1");
    await c.until((x) => x.of("ack")[0], "the ack");
    const waiting = new WsClient(wsUrl(server)); // connected but not signed in yet
    await waiting.opened;
    expect(await server.stop("SIGTERM")).toBe(0);
    await Promise.all([c.finished, waiting.finished]);
    expect(c.closed).toEqual({ code: 1001, reason: "unavailable: server is shutting down; reconnect and resume with since_seq" });
    expect(c.events.at(-1)?.kind).toMatchObject({ case: "error", value: { code: "unavailable" } });
    expect(c.messages(room).map((m) => m.text)).toEqual(["before the drain"]);
    expect(waiting.closed?.code).toBe(1001);
  });
});

describe("TLS: wss:// on the HTTP/1.1 path", () => {
  let server: ServerProcess;
  let ca: Buffer;
  beforeAll(async () => {
    const cert = selfSignedCert("edgechat-wss-");
    ca = cert.ca;
    server = await startServer(cert.env);
  });
  afterAll(async () => {
    await server.stop();
  });

  test("chat over wss://", async () => {
    const c = new WsClient(`wss://localhost:${server.port}/ws?user=tess`, { ca });
    await c.until((x) => x.of("ready")[0], "ready");
    c.join("secure");
    await c.joined("secure");
    c.say("secure", "over tls", "t-1");
    const ack = await c.until((x) => x.of("ack")[0], "the ack");
    expect(ack.message?.from).toBe("tess");
    await c.until((x) => x.messages("secure")[0], "the message");
    expect(c.messages("secure").map((m) => [Number(m.seq), m.text])).toEqual([[1, "over tls"]]);
    await c.close();
  });
});

describe("with a key (EDGECHAT_JWT_SECRET)", () => {
  let server: ServerProcess;
  let client: Chat;
  beforeAll(async () => {
    server = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET, EDGECHAT_REQUIRE_AUTH: "1" });
    client = chatClient(transport(server.url, "connect"));
  });
  afterAll(async () => {
    await server.stop();
  });

  const refusal = async (c: WsClient, firstFrame?: string) => {
    await c.opened.catch(() => {});
    if (firstFrame !== undefined) c.raw(firstFrame);
    await c.finished;
    expect(c.of("ready")).toEqual([]);
    return c.closed!;
  };

  test("no token, a bad token and a user name are refused with the reason; a healthy session keeps receiving", async () => {
    const room = "ws-auth";
    const healthy = new WsClient(wsUrl(server), { headers: bearer(await mintToken("hana")) });
    await healthy.until((c) => c.of("ready")[0], "hana ready");
    healthy.join(room);
    await healthy.joined(room);

    // No credentials, and a request as the first frame (x-user is no credential with a key).
    expect(await refusal(new WsClient(wsUrl(server), { headers: { "x-user": "mallory" } }), JSON.stringify({ join: { room } }))).toEqual({
      code: 4401,
      reason: 'unauthenticated: not signed in: send {"auth":{"token":"<JWT>"}} first, or the authorization header',
    });
    // A token signed with another key, in the header.
    const forged = await mintToken("mallory", { secret: "another-secret-that-is-long-enough-for-hs256!!" });
    expect(await refusal(new WsClient(wsUrl(server), { headers: bearer(forged) }))).toEqual({
      code: 4401,
      reason: "unauthenticated: token signature is invalid",
    });
    // An expired token in the first frame.
    const expired = await mintToken("mallory", { expiresIn: -60 });
    expect(await refusal(new WsClient(wsUrl(server)), JSON.stringify({ auth: { token: expired } }))).toEqual({
      code: 4401,
      reason: "unauthenticated: token expired: get a new one",
    });
    // A user name instead of a token.
    expect(await refusal(new WsClient(wsUrl(server)), JSON.stringify({ auth: { user: "mallory" } }))).toEqual({
      code: 4401,
      reason: 'unauthenticated: this server needs a token: send {"auth":{"token":"<JWT>"}}',
    });
    // Not a bearer header.
    expect(await refusal(new WsClient(wsUrl(server), { headers: { authorization: "Basic YWxpY2U6cHc=" } }))).toEqual({
      code: 4401,
      reason: "unauthenticated: malformed authorization header: expected `Bearer <JWT>`",
    });

    expect(await metric(server, 'edgechat_auth_failures_total{protocol="websocket",reason="signature"}')).toBe(1);
    expect(await metric(server, 'edgechat_auth_failures_total{protocol="websocket",reason="expired"}')).toBe(1);
    expect(await metric(server, 'edgechat_auth_failures_total{protocol="websocket",reason="malformed"}')).toBe(1);
    expect(await metric(server, 'edgechat_auth_failures_total{protocol="websocket",reason="missing"}')).toBe(2);

    const res = await client.send({ target: { case: "room", value: room }, text: "after the refusals" }, { headers: bearer(await mintToken("sam")) });
    await healthy.until((c) => c.messages(room).some((m) => m.id === res.message?.id), "the message after");
    expect(healthy.messages(room).map((m) => `${m.from}: ${m.text}`)).toEqual(["sam: after the refusals"]);
    expect((await client.listOnline({ room }, { headers: bearer(await mintToken("x")) })).users.map((u) => u.user)).toEqual(["hana"]);
    await healthy.close();
  });

  test("a good token in the header or in the first frame: the sender is the token's subject", async () => {
    const room = "ws-auth-ok";
    const byHeader = new WsClient(wsUrl(server), { headers: bearer(await mintToken("ulla")) });
    const byFrame = new WsClient(wsUrl(server, "?user=not-me"));
    await byFrame.opened;
    byFrame.raw(JSON.stringify({ auth: { token: await mintToken("vera") } }));
    byFrame.join(room); // sent right behind the auth frame: handled after it, in order
    await byFrame.joined(room);
    byHeader.join(room);
    await byHeader.joined(room);
    expect(byHeader.of("ready")[0].user).toBe("ulla");
    expect(byFrame.of("ready")[0].user).toBe("vera");

    byHeader.say(room, "from the header", "h-1");
    await byFrame.until((c) => c.messages(room).length === 1, "the first message");
    byFrame.say(room, "from the frame", "f-1");
    for (const c of [byHeader, byFrame]) {
      await c.until((x) => x.messages(room).length === 2, "both messages");
      expect(c.messages(room).map((m) => [Number(m.seq), m.from, m.text])).toEqual([
        [1, "ulla", "from the header"],
        [2, "vera", "from the frame"],
      ]);
    }
    await Promise.all([byHeader.close(), byFrame.close()]);
  });
});

/** A client text frame (masked, as RFC 6455 requires of clients), for payloads under 126 bytes. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error("maskedText: payload too long");
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Splits unmasked server frames. */
function serverFrames(buf: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    let len = buf[at + 1] & 0x7f;
    let head = 2;
    if (len === 126) {
      len = buf.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + len > buf.length) break;
    out.push({ opcode: buf[at] & 0x0f, payload: buf.subarray(at + head, at + head + len) });
    at += head + len;
  }
  return out;
}
