// Subscribe, Chat and the old ChatStream over every protocol and codec, with connect-node's own
// clients, with and without gzip-compressed requests, on HTTP/2 and (for the protocols that allow
// it) HTTP/1.1: all served by app/transport/direct.ts, which decompresses with connect-node's
// algorithms and shows an HTTP/1.1 exchange as a stream. A client must not be able to tell any of
// them apart: the same events in the same order, the same errors with the same codes and texts,
// the same deadline end.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { ChatRequestSchema, ChatService, type ChatEvent } from "../../app/gen/chat/v1/chat_pb.ts";
import { ChatMessageSchema, ChatService as LegacyChatService } from "../../app/gen/chat/chat_pb.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { scrape } from "../support/metrics.ts";
import { eventually } from "../support/wait.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0", EDGECHAT_JOIN_RATE_PER_SECOND: "0" });
});
afterAll(async () => {
  await server?.stop();
});

type Protocol = "grpc" | "grpc-web" | "connect";
const PROTOCOLS: Protocol[] = ["grpc", "grpc-web", "connect"];

function client(protocol: Protocol, binary: boolean, gzipped: boolean, httpVersion: "1.1" | "2" = "2") {
  const opts = { baseUrl: server.url, httpVersion, useBinaryFormat: binary, ...(gzipped ? { sendCompression: compressionGzip, compressMinBytes: 0 } : {}) };
  const t = protocol === "grpc" ? createGrpcTransport(opts) : protocol === "grpc-web" ? createGrpcWebTransport(opts) : createConnectTransport(opts);
  return createClient(ChatService, t);
}

const as = (user: string, timeoutMs?: number) => ({ headers: { "x-user": user }, timeoutMs });

/** Subscribes, lets `act` post, and returns what the stream saw until it ended or `until` said enough. */
async function subscribe(
  c: ReturnType<typeof client>,
  user: string,
  rooms: string[],
  act: () => Promise<unknown>,
  until: (e: ChatEvent[]) => boolean,
  timeoutMs?: number,
) {
  const events: ChatEvent[] = [];
  const abort = new AbortController();
  let error: ConnectError | undefined;
  const reading = (async () => {
    try {
      for await (const e of c.subscribe({ rooms }, { ...as(user, timeoutMs), signal: abort.signal })) {
        events.push(e);
        if (until(events)) abort.abort();
      }
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.Canceled) error = e;
    }
  })();
  // The stream is in its rooms once it has its first event (a joined per room comes first).
  for (let i = 0; i < 200 && events.length === 0 && !error; i++) await Bun.sleep(10);
  await act();
  await Promise.race([reading, Bun.sleep(5000)]);
  abort.abort();
  return { events, error };
}

/** What a client sees of an event, without what differs from run to run (ids, times). */
const shape = (e: ChatEvent) =>
  e.kind.case === "message"
    ? `message ${e.kind.value.room} ${e.kind.value.seq} ${e.kind.value.from}: ${e.kind.value.text}`
    : e.kind.case === "joined"
      ? `joined ${e.kind.value.room}`
      : e.kind.case === "ready"
        ? "ready"
        : (e.kind.case ?? "");

describe.each(PROTOCOLS)("%s", (protocol) => {
  for (const binary of [true, false]) {
    const codec = binary ? "binary" : "JSON";

    test(`${codec}: the same events, in the same order, with and without gzip`, async () => {
      const seen: string[][] = [];
      for (const gzipped of [false, true]) {
        const room = `paths-${protocol}-${codec}-${gzipped ? "gzip" : "plain"}`;
        const c = client(protocol, binary, gzipped);
        const sender = client("connect", true, false);
        const { events, error } = await subscribe(
          c,
          "reader",
          [room],
          async () => {
            for (const text of ["one", "twö", "three"]) await sender.send({ target: { case: "room", value: room }, text }, as("writer"));
          },
          (es) => es.filter((e) => e.kind.case === "message").length === 3,
        );
        expect(error).toBeUndefined();
        seen.push(
          events
            .map(shape)
            .filter((s) => !s.startsWith("presence"))
            .map((s) => s.replace(room, "ROOM")),
        );
      }
      expect(seen[0]).toEqual(["ready", "joined ROOM", "message ROOM 1 writer: one", "message ROOM 2 writer: twö", "message ROOM 3 writer: three"]);
      expect(seen[1]).toEqual(seen[0]);
    });

    test(`${codec}: the same refusals: a bad room, another pair's DM, no user, a deadline`, async () => {
      const outcomes: string[][] = [];
      for (const gzipped of [false, true]) {
        const c = client(protocol, binary, gzipped);
        const run = async (user: string, rooms: string[], timeoutMs?: number) => {
          const { error } = await subscribe(
            c,
            user,
            rooms,
            async () => {},
            () => false,
            timeoutMs,
          );
          return error ? `${Code[error.code]}: ${error.rawMessage}` : "no error";
        };
        const anonymous = await (async () => {
          try {
            for await (const _ of c.subscribe({ rooms: ["x"] })) break;
            return "no error";
          } catch (err) {
            const e = ConnectError.from(err);
            return `${Code[e.code]}: ${e.rawMessage}`;
          }
        })();
        outcomes.push([await run("dora", ["café au lait"]), await run("dora", ["dm:amy:zed"]), anonymous, await run("dora", ["slow"], 300)]);
      }
      expect(outcomes[0][0]).toStartWith("InvalidArgument: room name must be");
      expect(outcomes[0][1]).toBe('PermissionDenied: room "dm:amy:zed" is a direct conversation between two other users');
      expect(outcomes[0][2]).toStartWith("Unauthenticated: no user");
      expect(outcomes[0][3]).toBe("DeadlineExceeded: the operation timed out");
      expect(outcomes[1]).toEqual(outcomes[0]);
    });
  }
});

// HTTP/1.1 streams (browsers), compressed or not: the same answers as on HTTP/2.
describe.each(["grpc-web", "connect"] as const)("%s over HTTP/1.1 (what browsers speak)", (protocol) => {
  for (const binary of [true, false]) {
    const codec = binary ? "binary" : "JSON";

    test(`${codec}: Subscribe gets the same events and refusals with and without gzip`, async () => {
      const seen: string[][] = [];
      for (const gzipped of [false, true]) {
        const room = `h1-${protocol}-${codec}-${gzipped ? "gzip" : "plain"}`;
        const c = client(protocol, binary, gzipped, "1.1");
        const sender = client("connect", true, false);
        const { events, error } = await subscribe(
          c,
          "reader",
          [room],
          async () => {
            for (const text of ["one", "twö"]) await sender.send({ target: { case: "room", value: room }, text }, as("writer"));
          },
          (es) => es.filter((e) => e.kind.case === "message").length === 2,
        );
        expect(error).toBeUndefined();
        const refused = await subscribe(
          c,
          "dora",
          ["dm:amy:zed"],
          async () => {},
          () => false,
        );
        const late = await subscribe(
          c,
          "dora",
          ["slow"],
          async () => {},
          () => false,
          300,
        );
        seen.push([
          ...events
            .map(shape)
            .filter((x) => !x.startsWith("presence"))
            .map((x) => x.replace(room, "ROOM")),
          `${Code[refused.error?.code ?? 0]}: ${refused.error?.rawMessage}`,
          `${Code[late.error?.code ?? 0]}: ${late.error?.rawMessage}`,
        ]);
      }
      expect(seen[0]).toEqual([
        "ready",
        "joined ROOM",
        "message ROOM 1 writer: one",
        "message ROOM 2 writer: twö",
        'PermissionDenied: room "dm:amy:zed" is a direct conversation between two other users',
        "DeadlineExceeded: the operation timed out",
      ]);
      expect(seen[1]).toEqual(seen[0]);
    });
  }
});

describe.each(PROTOCOLS)("Chat over %s", (protocol) => {
  for (const binary of [true, false]) {
    const codec = binary ? "binary" : "JSON";

    test(`${codec}: join, send with ack, a refused send, ping; a half-close ends it OK; the same with and without gzip`, async () => {
      const seen: string[][] = [];
      for (const gzipped of [false, true]) {
        const room = `chat-${protocol}-${codec}-${gzipped ? "gzip" : "plain"}`;
        const requests = createWritableIterable<MessageInitShape<typeof ChatRequestSchema>>();
        const events: string[] = [];
        let error: ConnectError | undefined;
        const c = client(protocol, binary, gzipped);
        const reading = (async () => {
          try {
            for await (const e of c.chat(made(ChatRequestSchema, requests), as("chatter"))) {
              const k = e.kind;
              if (k.case === "ack") events.push(`ack ${k.value.clientMsgId} seq ${k.value.message?.seq}`);
              else if (k.case === "error") events.push(`error ${k.value.code}: ${k.value.text}`);
              else if (k.case === "pong") events.push(`pong ${k.value.nonce}`);
              else if (k.case === "message") events.push(`message ${k.value.seq}: ${k.value.text}`);
              else if (k.case === "joined" || k.case === "ready") events.push(k.case);
            }
          } catch (err) {
            error = ConnectError.from(err);
          }
        })();
        await requests.write({ kind: { case: "join", value: { room } } });
        await requests.write({ kind: { case: "send", value: { target: { case: "room", value: room }, text: "hello", clientMsgId: "c1" } } });
        await requests.write({ kind: { case: "send", value: { target: { case: "room", value: "bad room!" }, text: "x", clientMsgId: "c2" } } });
        await requests.write({ kind: { case: "ping", value: { nonce: "n1" } } });
        for (let i = 0; i < 300 && !events.includes("pong n1"); i++) await Bun.sleep(10);
        requests.close();
        await Promise.race([reading, Bun.sleep(5000)]);
        expect(error).toBeUndefined();
        seen.push(events.map((e) => e.replace(room, "ROOM")));
      }
      expect(seen[0]).toEqual([
        "ready",
        "joined",
        "message 1: hello",
        "ack c1 seq 1",
        expect.stringMatching(/^error invalid_argument: room name must be/) as unknown as string,
        "pong n1",
      ]);
      expect(seen[1]).toEqual(seen[0]);
    });
  }

  test("a request over the size limit ends the stream with ResourceExhausted, with and without gzip", async () => {
    const outcomes: string[] = [];
    for (const gzipped of [false, true]) {
      const requests = createWritableIterable<MessageInitShape<typeof ChatRequestSchema>>();
      const c = client(protocol, true, gzipped);
      let outcome = "no error";
      const reading = (async () => {
        try {
          for await (const _ of c.chat(made(ChatRequestSchema, requests), as("big"))) {
          }
        } catch (err) {
          const e = ConnectError.from(err);
          outcome = `${Code[e.code]}: ${e.rawMessage}`;
        }
      })();
      await requests.write({ kind: { case: "send", value: { target: { case: "room", value: "big" }, text: "z".repeat(70_000) } } }).catch(() => {});
      await Promise.race([reading, Bun.sleep(5000)]);
      requests.close();
      outcomes.push(outcome);
    }
    expect(outcomes[0]).toMatch(/^ResourceExhausted: message size \d+ is larger than configured readMaxBytes 65536$/);
    // Through gzip the limit applies to the decompressed size, and says so.
    expect(outcomes[1]).toBe("ResourceExhausted: message is larger than configured readMaxBytes 65536 after decompression");
  });
});

test("the old API's ChatStream: the same replies with and without gzip, and the half-close ends it OK", async () => {
  const seen: string[][] = [];
  for (const gzipped of [false, true]) {
    const opts = { baseUrl: server.url, ...(gzipped ? { sendCompression: compressionGzip, compressMinBytes: 0 } : {}) };
    const old = createClient(LegacyChatService, createGrpcTransport(opts));
    const requests = createWritableIterable<MessageInitShape<typeof ChatMessageSchema>>();
    const replies: string[] = [];
    let error: ConnectError | undefined;
    const reading = (async () => {
      try {
        for await (const m of old.chatStream(made(ChatMessageSchema, requests))) replies.push(`${m.user}: ${m.message}`);
      } catch (err) {
        error = ConnectError.from(err);
      }
    })();
    const user = gzipped ? "oldie2" : "oldie1";
    await requests.write({ user, message: "connect bob smith" });
    await requests.write({ message: `connect ${user}` });
    await requests.write({ message: "hello?" });
    for (let i = 0; i < 300 && replies.length < 3; i++) await Bun.sleep(10);
    requests.close();
    await Promise.race([reading, Bun.sleep(5000)]);
    expect(error).toBeUndefined();
    seen.push(replies.map((r) => r.replaceAll(user, "USER")));
  }
  expect(seen[0]).toEqual([
    expect.stringMatching(/^Server: Not connected: partner id must be 1 to 64 characters/) as unknown as string,
    "Server: Not connected: you cannot connect to yourself.",
    "Server: You have no chat partner yet: type `list` to see who is online, then `connect <id>`.",
  ]);
  expect(seen[1]).toEqual(seen[0]);
});

/** Requests written as init shapes, made messages of `schema` for the client. */
async function* made<T extends DescMessage>(schema: T, requests: AsyncIterable<MessageInitShape<T>>) {
  for await (const r of requests) yield create(schema, r);
}

test("streams are counted by protocol, whichever path served them", async () => {
  // Every stream above has ended: none stays counted open, whichever path served it.
  await eventually(
    async () => {
      const m = await scrape(server.metricsUrl);
      return ["grpc", "grpc_web", "connect"].every((p) => m.get(`edgechat_sessions_open{protocol="${p}"}`) === 0);
    },
    5000,
    "no session left open",
  );
  const m = await scrape(server.metricsUrl);
  const started = (type: string) => m.get(`grpc_server_started_total{grpc_type="${type}",grpc_service="chat.v1.ChatService",grpc_method="Subscribe"}`) ?? 0;
  // 3 protocols x 2 codecs x plain and gzip x (1 + 3 refusals that reach the method) at least.
  expect(started("server_stream")).toBeGreaterThanOrEqual(36);
});
