// Python's grpcio (Debian's python3-grpcio), a gRPC implementation nobody here wrote, against the
// server: unary, server streaming and bidi calls, with and without gzip (compressed requests are
// decompressed on the same direct path), errors with their codes and readable messages, and deadlines. The
// client is test/support/grpcio_client.py; messages travel as bytes, made and read here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ChatEventSchema,
  ChatRequestSchema,
  SendRequestSchema,
  SendResponseSchema,
  SubscribeRequestSchema,
  type ChatEvent,
} from "../../app/gen/chat/v1/chat_pb.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";

// Debian's interpreter, where python3-grpcio lives (a python3 earlier on the PATH may be another).
const PYTHON = "/usr/bin/python3";
const CI = process.env.CI === "true" || process.env.CI === "1";
const available = existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import grpc"]).exitCode === 0;
if (!available && !CI) {
  const bar = "!".repeat(100);
  console.warn(`\n${bar}\n!! SKIPPING test/e2e/grpcio.test.ts: no grpcio for ${PYTHON} (apt-get install -y python3-grpcio)\n${bar}\n`);
}
const suite = available || CI ? describe : describe.skip;

let server: ServerProcess;
beforeAll(async () => {
  if (available || CI) server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0" });
});
afterAll(async () => {
  await server?.stop();
});

const SERVICE = "/chat.v1.ChatService";
const hex = <T extends DescMessage>(schema: T, init: MessageInitShape<T>) => Buffer.from(toBinary(schema, create(schema, init))).toString("hex");

interface Result {
  messages: string[];
  code: string;
  details: string;
}

async function grpcio(cmd: {
  kind: "unary" | "server_stream" | "bidi";
  method: string;
  requests: string[];
  user?: string;
  timeout?: number;
  gzip?: boolean;
  until?: number;
}): Promise<Result> {
  const input = { target: `127.0.0.1:${server.port}`, metadata: cmd.user ? { "x-user": cmd.user } : {}, ...cmd, method: `${SERVICE}/${cmd.method}` };
  const proc = Bun.spawn([PYTHON, join(ROOT, "test/support/grpcio_client.py")], { stdin: new Blob([JSON.stringify(input)]), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`grpcio client failed (${code}): ${err}`);
  return JSON.parse(out);
}

/** The events of a result, without presence (whose place among them depends on timing). */
const events = (r: Result): ChatEvent[] => r.messages.map((m) => fromBinary(ChatEventSchema, Buffer.from(m, "hex"))).filter((e) => e.kind.case !== "presence");

suite("Python grpcio", () => {
  for (const gzip of [false, true]) {
    const how = gzip ? "gzip-compressed requests" : "uncompressed";

    test(`${how}: unary Send, then Subscribe replays the room and stops when canceled`, async () => {
      const room = `py-${gzip ? "gz" : "plain"}`;
      for (const text of ["one", "twö"]) {
        const sent = await grpcio({
          kind: "unary",
          method: "Send",
          requests: [hex(SendRequestSchema, { target: { case: "room", value: room }, text })],
          user: "py",
          gzip,
        });
        expect(sent.code).toBe("OK");
        expect(fromBinary(SendResponseSchema, Buffer.from(sent.messages[0], "hex")).message?.text).toBe(text);
      }
      const sub = await grpcio({
        kind: "server_stream",
        method: "Subscribe",
        requests: [hex(SubscribeRequestSchema, { rooms: [room], sinceSeq: { [room]: 0n } })],
        user: "reader",
        gzip,
        until: 5,
      });
      expect(sub.code).toBe("OK");
      const kinds = events(sub).map((e) => (e.kind.case === "message" ? `${e.kind.value.seq} ${e.kind.value.text}` : e.kind.case));
      expect(kinds).toEqual(["ready", "joined", "1 one", "2 twö"]);
    });

    test(`${how}: bidi Chat: join, send with ack, ping and pong, then the half-close ends it OK`, async () => {
      const room = `py-chat-${gzip ? "gz" : "plain"}`;
      const requests = [
        hex(ChatRequestSchema, { kind: { case: "join", value: { room } } }),
        hex(ChatRequestSchema, { kind: { case: "send", value: { target: { case: "room", value: room }, text: "from python", clientMsgId: "p1" } } }),
        hex(ChatRequestSchema, { kind: { case: "ping", value: { nonce: "py" } } }),
      ];
      const chat = await grpcio({ kind: "bidi", method: "Chat", requests, user: "pyc", gzip, until: 6 });
      expect(chat.code).toBe("OK");
      const seen = events(chat).map((e) =>
        e.kind.case === "ack" ? `ack ${e.kind.value.clientMsgId}` : e.kind.case === "pong" ? `pong ${e.kind.value.nonce}` : e.kind.case,
      );
      expect(seen).toEqual(["ready", "joined", "message", "ack p1", "pong py"]);
    });

    test(`${how}: errors carry their codes and readable messages; a deadline ends a stream`, async () => {
      const bad = await grpcio({
        kind: "unary",
        method: "Send",
        requests: [hex(SendRequestSchema, { target: { case: "room", value: "dm:ann:bob" }, text: "x" })],
        user: "eve",
        gzip,
      });
      expect([bad.code, bad.details]).toEqual(["PERMISSION_DENIED", 'room "dm:ann:bob" is a direct conversation between two other users']);
      const anonymous = await grpcio({ kind: "server_stream", method: "Subscribe", requests: [hex(SubscribeRequestSchema, { rooms: ["x"] })], gzip });
      expect(anonymous.code).toBe("UNAUTHENTICATED");
      expect(anonymous.details).toStartWith("no user: in dev mode, send the header `x-user: <your id>`");
      const badRoom = await grpcio({
        kind: "bidi",
        method: "Chat",
        requests: [hex(ChatRequestSchema, { kind: { case: "join", value: { room: "café au lait" } } })],
        user: "eve",
        gzip,
        until: 2,
      });
      const error = events(badRoom).find((e) => e.kind.case === "error");
      expect(error?.kind.value).toMatchObject({
        code: "invalid_argument",
        text: 'room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "café au lait")',
      });
      const late = await grpcio({
        kind: "server_stream",
        method: "Subscribe",
        requests: [hex(SubscribeRequestSchema, { rooms: ["quiet"] })],
        user: "eve",
        gzip,
        timeout: 0.5,
      });
      expect([late.code, late.messages.length > 0]).toEqual(["DEADLINE_EXCEEDED", true]);
    });
  }
});
