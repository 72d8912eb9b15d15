// Events on the wire in the length-prefixed framing that gRPC, gRPC-Web and the Connect streaming
// protocol share: a flags byte (0), a 4-byte big-endian length, the message in the call's codec
// (protobuf binary, or protobuf JSON for the +json content types). One room event goes to every
// member's stream as the same object, so each of its encodings is made once and shared, however
// many streams write it.
import { toBinary, toJsonString } from "@bufbuild/protobuf";
import { ChatEventSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";

export type Codec = "proto" | "json";

const encoder = new TextEncoder();
const frames: Record<Codec, WeakMap<ChatEvent, Uint8Array>> = { proto: new WeakMap(), json: new WeakMap() };
const jsonTexts = new WeakMap<ChatEvent, string>();
const wsFrames = new WeakMap<ChatEvent, Uint8Array>();

/** The event as protobuf JSON text, made on first use (the WebSocket gateway sends it as is). */
export function jsonOf(event: ChatEvent): string {
  let text = jsonTexts.get(event);
  if (text === undefined) {
    text = toJsonString(ChatEventSchema, event);
    jsonTexts.set(event, text);
  }
  return text;
}

/** The event's frame in `codec`, encoded on first use. */
export function frameOf(event: ChatEvent, codec: Codec = "proto"): Uint8Array {
  let frame = frames[codec].get(event);
  if (!frame) {
    frame = envelope(codec === "proto" ? toBinary(ChatEventSchema, event) : encoder.encode(jsonOf(event)));
    frames[codec].set(event, frame);
  }
  return frame;
}

/**
 * The event as a WebSocket text frame from server to client (RFC 6455 section 5.2: FIN, opcode 1,
 * no mask), made on first use. Every connection in the room sends the same bytes, where the ws
 * library's send() would encode the text to UTF-8 and frame it again for each connection.
 */
export function wsFrameOf(event: ChatEvent): Uint8Array {
  let frame = wsFrames.get(event);
  if (!frame) {
    const payload = encoder.encode(jsonOf(event));
    const n = payload.length;
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    frame = new Uint8Array(head + n);
    const view = new DataView(frame.buffer);
    frame[0] = 0x81;
    if (head === 2) frame[1] = n;
    else if (head === 4) {
      frame[1] = 126;
      view.setUint16(2, n);
    } else {
      frame[1] = 127;
      view.setBigUint64(2, BigInt(n));
    }
    frame.set(payload, head);
    wsFrames.set(event, frame);
  }
  return frame;
}

/** Several events' WebSocket frames as one buffer, for one write. */
export function wsFramesOf(events: ChatEvent[]): Uint8Array {
  return events.length === 1 ? wsFrameOf(events[0]) : concat(events.map(wsFrameOf));
}

/** Several events' frames as one buffer, for one write. */
export function framesOf(events: ChatEvent[], codec: Codec = "proto"): Uint8Array {
  if (events.length === 1) return frameOf(events[0], codec);
  const parts = events.map((e) => frameOf(e, codec));
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function envelope(payload: Uint8Array, flags = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}
