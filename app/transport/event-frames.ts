// Events on the wire in the length-prefixed framing that gRPC, gRPC-Web and the Connect streaming
// protocol share for binary messages: a flags byte (0), a 4-byte big-endian length, the protobuf.
// One room event goes to every member's stream as the same object, so its frame is encoded once
// and shared, however many streams write it.
import { toBinary } from "@bufbuild/protobuf";
import { ChatEventSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";

const frames = new WeakMap<ChatEvent, Uint8Array>();

/** The event's frame, encoded on first use. */
export function frameOf(event: ChatEvent): Uint8Array {
  let frame = frames.get(event);
  if (!frame) {
    frame = envelope(toBinary(ChatEventSchema, event));
    frames.set(event, frame);
  }
  return frame;
}

/** Several events' frames as one buffer, for one write. */
export function framesOf(events: ChatEvent[]): Uint8Array {
  if (events.length === 1) return frameOf(events[0]);
  const parts = events.map(frameOf);
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
