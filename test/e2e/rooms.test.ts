// Rooms over every protocol the server speaks, with real connect-node clients.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { chatClient, openChat, Reader, transport, type Protocol } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

describe("Chat stream (bidi) over HTTP/2", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as Protocol[]) {
    for (const binary of [true, false]) {
      test(`${protocol} ${binary ? "binary" : "json"}: two users in a room see each message once, in seq order`, async () => {
        const client = chatClient(transport(server.url, protocol, "2", binary));
        const room = `r-${protocol}-${binary}`;
        const a = openChat(client, "ann");
        const b = openChat(client, "ben");
        await a.send({ kind: { case: "join", value: { room } } });
        await b.send({ kind: { case: "join", value: { room } } });
        await a.reader.until((r) => r.of("joined").length === 1, 5000, "ann joined");
        await b.reader.until((r) => r.of("joined").length === 1, 5000, "ben joined");
        for (let i = 0; i < 5; i++) {
          await a.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: `a${i}`, clientMsgId: `a${i}` } } });
          await b.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text: `b${i}`, clientMsgId: `b${i}` } } });
        }
        for (const r of [a.reader, b.reader]) {
          await r.until((x) => x.messages(room).length === 10, 5000, "10 messages");
          expect(r.messages(room).map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        }
        expect(a.reader.of("ack").map((x) => x.clientMsgId)).toEqual(["a0", "a1", "a2", "a3", "a4"]);
        expect(a.reader.of("ready")[0].user).toBe("ann");
        expect(
          b.reader
            .messages(room)
            .filter((m) => m.from === "ann")
            .map((m) => m.text),
        ).toEqual(["a0", "a1", "a2", "a3", "a4"]);
        a.close();
        b.close();
        await a.reader.finished;
        await b.reader.finished;
        expect(a.reader.error).toBeUndefined();
      });
    }
  }
});

describe("Send and Subscribe over HTTP/1.1", () => {
  for (const protocol of ["connect", "grpc-web"] as Protocol[]) {
    for (const binary of [true, false]) {
      test(`${protocol} ${binary ? "binary" : "json"}: a subscriber gets what Send posts`, async () => {
        const client = chatClient(transport(server.url, protocol, "1.1", binary));
        const room = `h1-${protocol}-${binary}`;
        const abort = new AbortController();
        const sub = new Reader(client.subscribe({ rooms: [room] }, { headers: { "x-user": "cat" }, signal: abort.signal }));
        await sub.until((r) => r.of("joined").length === 1, 5000, "joined");
        const res = await client.send({ target: { case: "room", value: room }, text: "over h1" }, { headers: { "x-user": "dan" } });
        expect(res.message?.seq).toBe(1n);
        expect(res.message?.from).toBe("dan");
        const [m] = await sub.until((r) => (r.messages(room).length === 1 ? r.messages(room) : undefined), 5000, "message");
        expect(m.text).toBe("over h1");
        const history = await client.history({ room }, { headers: { "x-user": "cat" } });
        expect(history.messages.map((x) => x.text)).toEqual(["over h1"]);
        abort.abort();
        await sub.finished;
      });
    }
  }
});

describe("gzip", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as Protocol[]) {
    test(`${protocol}: gzip-compressed requests and responses`, async () => {
      const t =
        protocol === "grpc"
          ? createGrpcTransport({ baseUrl: server.url, sendCompression: compressionGzip, compressMinBytes: 1 })
          : protocol === "connect"
            ? createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", sendCompression: compressionGzip, compressMinBytes: 1 })
            : createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", sendCompression: compressionGzip, compressMinBytes: 1 });
      const client = chatClient(t);
      const text = "squeeze ".repeat(200);
      const room = `gzip-${protocol}`;
      const res = await client.send({ target: { case: "room", value: room }, text }, { headers: { "x-user": "ann" } });
      expect(res.message?.text).toBe(text);
      const history = await client.history({ room }, { headers: { "x-user": "ann" } });
      expect(history.messages[0].text).toBe(text);
    });
  }

  test("the server compresses a Connect response when the client accepts gzip", async () => {
    const res = await fetch(`${server.url}/chat.v1.ChatService/History`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-user": "ann", "accept-encoding": "gzip" },
      body: JSON.stringify({ room: "gzip-connect" }),
      decompress: false,
    } as RequestInit);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const body = JSON.parse(new TextDecoder().decode(Bun.gunzipSync(new Uint8Array(await res.arrayBuffer()))));
    expect(body.messages[0].from).toBe("ann");
  });
});
