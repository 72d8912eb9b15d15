// The shared event frames: one encoding per event, in the 5-byte length-prefixed framing of gRPC.
import { expect, test } from "bun:test";
import { create, fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { ChatEventSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import http from "node:http";
import { WebSocketServer } from "ws";
import { framesOf, frameOf, jsonOf, wsFrameOf, wsFramesOf } from "./event-frames.ts";

function message(seq: number, text: string): ChatEvent {
  return create(ChatEventSchema, { kind: { case: "message", value: { id: `m${seq}`, room: "lobby", seq: BigInt(seq), from: "ann", text } } });
}

/** Splits a buffer of frames into their payloads, checking every prefix on the way. */
function unframe(bytes: Uint8Array): ChatEvent[] {
  const out: ChatEvent[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    expect(bytes.length - at).toBeGreaterThanOrEqual(5);
    expect(bytes[at]).toBe(0);
    const len = view.getUint32(at + 1);
    expect(at + 5 + len).toBeLessThanOrEqual(bytes.length);
    out.push(fromBinary(ChatEventSchema, bytes.subarray(at + 5, at + 5 + len)));
    at += 5 + len;
  }
  return out;
}

test("frameOf: a 5-byte prefix (flags 0, big-endian length) and the event's protobuf, encoded once", () => {
  // A text long enough that the length needs more than one byte, so the byte order matters.
  const event = message(7, "é".repeat(200));
  const payload = toBinary(ChatEventSchema, event);
  expect(payload.length).toBeGreaterThan(255);
  const frame = frameOf(event);
  expect(frame.length).toBe(5 + payload.length);
  expect(frame[0]).toBe(0);
  expect(Array.from(frame.subarray(1, 5))).toEqual([
    (payload.length >>> 24) & 0xff,
    (payload.length >>> 16) & 0xff,
    (payload.length >>> 8) & 0xff,
    payload.length & 0xff,
  ]);
  expect(frame.subarray(5)).toEqual(payload);
  // The same event again: the very same bytes object, not a second encoding.
  expect(frameOf(event)).toBe(frame);
  // An equal but distinct event gets its own (equal) frame.
  const twin = message(7, "é".repeat(200));
  const other = frameOf(twin);
  expect(other).not.toBe(frame);
  expect(other).toEqual(frame);
});

test("frameOf: an event whose value has no fields (heartbeat) still frames its oneof case", () => {
  const heartbeat = create(ChatEventSchema, { kind: { case: "heartbeat", value: {} } });
  const frame = frameOf(heartbeat);
  const payload = toBinary(ChatEventSchema, heartbeat);
  expect(frame.length).toBe(5 + payload.length);
  expect(new DataView(frame.buffer, frame.byteOffset).getUint32(1)).toBe(payload.length);
  expect(unframe(frame)[0].kind.case).toBe("heartbeat");
});

test("framesOf: several events are their frames concatenated, and decode back in order", () => {
  const events = [
    create(ChatEventSchema, { kind: { case: "ready", value: { user: "ann", region: "local", sessionId: "s1" } } }),
    create(ChatEventSchema, { kind: { case: "joined", value: { room: "lobby", lastSeq: 2n } } }),
    message(1, "first"),
    message(2, "second, a bit longer ".repeat(20)),
    message(3, ""),
  ];
  const all = framesOf(events);
  const expected = Buffer.concat(events.map((e) => Buffer.from(frameOf(e))));
  expect(Buffer.from(all)).toEqual(expected);
  const decoded = unframe(all);
  expect(decoded.length).toBe(events.length);
  for (let i = 0; i < events.length; i++) expect(decoded[i]).toEqual(events[i]);
  expect(decoded.map((e) => e.kind.case)).toEqual(["ready", "joined", "message", "message", "message"]);
  // An event shared by two batches is framed the same way in both.
  const again = framesOf([events[3], events[2]]);
  expect(unframe(again)).toEqual([events[3], events[2]]);
});

test("framesOf: one event is that event's frame; none is empty", () => {
  const event = message(9, "only");
  expect(framesOf([event])).toBe(frameOf(event));
  expect(framesOf([]).length).toBe(0);
});

test("the JSON codec: the event's protobuf JSON, framed, made once and shared with the WebSocket text", () => {
  const event = message(4, "héllo");
  const frame = frameOf(event, "json");
  expect(frame[0]).toBe(0);
  const text = new TextDecoder().decode(frame.subarray(5));
  expect(new DataView(frame.buffer, frame.byteOffset).getUint32(1)).toBe(frame.length - 5);
  expect(fromJsonString(ChatEventSchema, text)).toEqual(event);
  expect(text).toBe(jsonOf(event));
  expect(frameOf(event, "json")).toBe(frame);
  expect(jsonOf(event)).toBe(jsonOf(event));
  // Each codec keeps its own frame.
  expect(frameOf(event, "proto")).not.toEqual(frame);
});

test("WebSocket frames: a WebSocket client nobody here wrote (Bun's) reads each length form (7, 16 and 64-bit) as the event's JSON text", async () => {
  const events = [message(1, "hi"), message(2, "é".repeat(300)), message(3, "x".repeat(70_000))];
  expect(events.map((e) => wsFrameOf(e)[1])).toEqual([jsonOf(events[0]).length, 126, 127]);
  // The frames go straight onto the upgraded socket, as the gateway writes them.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = http.createServer();
  server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, () => socket.write(wsFramesOf(events))));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}/`);
    const texts = await new Promise<unknown[]>((resolve, reject) => {
      const got: unknown[] = [];
      client.onmessage = (m) => {
        if (got.push(m.data) === events.length) resolve(got);
      };
      client.onerror = () => reject(new Error("the client refused the frames"));
    });
    client.close();
    expect(texts).toEqual(events.map(jsonOf));
  } finally {
    server.close();
  }
  // Made once per event, shared by every connection.
  expect(wsFrameOf(events[0])).toBe(wsFrameOf(events[0]));
  expect(wsFramesOf([events[1]])).toBe(wsFrameOf(events[1]));
});
