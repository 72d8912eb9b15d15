// Baseline: the chat server a TypeScript team would write with the standard Node gRPC server,
// @grpc/grpc-js + @grpc/proto-loader, on edgechat's own proto (chat.v1.ChatService: Send and
// Subscribe; the other RPCs answer UNIMPLEMENTED). Run with `node`; PORT=0 picks a free port and the
// first stdout line is {"msg":"listening","port":N}, as edgechat logs it.
//
// Written as well as the library allows, so that the comparison is fair:
// - one Map of rooms, each a Set of subscriber calls; no per-message lookups beyond it;
// - each event is encoded once per room and the same bytes are written to every subscriber
//   (a pass-through responseSerialize), instead of one protobufjs encode per subscriber;
// - backpressure: a subscriber whose call buffers more than QUEUE events (the client stopped
//   reading) is ended with RESOURCE_EXHAUSTED, the same rule and default limit as edgechat's;
// - no history, no durability: a message lives in memory only long enough to be written.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VERSION = JSON.parse(readFileSync(join(ROOT, "node_modules/@grpc/grpc-js/package.json"), "utf8")).version;
const QUEUE = Number(process.env.QUEUE || 1000);
const REGION = "local";
const ROOM = /^[A-Za-z0-9_.:-]{1,64}$/;

const definition = protoLoader.loadSync("chat/v1/chat.proto", {
  includeDirs: [join(ROOT, "proto")],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
});
const service = { .../** @type {grpc.ServiceDefinition} */ (definition["chat.v1.ChatService"]) };
const encodeEvent = service.Subscribe.responseSerialize;
// Subscribe may be handed bytes already encoded (one encode per room): write them as they are.
service.Subscribe = { ...service.Subscribe, responseSerialize: (v) => (Buffer.isBuffer(v) ? v : encodeEvent(v)) };

/** room name -> { seq, subs: Set<call> } */
const rooms = new Map();

function roomOf(name) {
  let r = rooms.get(name);
  if (!r) rooms.set(name, (r = { seq: 0, subs: new Set() }));
  return r;
}

function userOf(call) {
  const u = call.metadata.get("x-user")[0];
  return typeof u === "string" && u ? u : undefined;
}

function fail(code, details) {
  return Object.assign(new Error(details), { code, details });
}

function drop(call) {
  for (const name of call.rooms ?? []) {
    const r = rooms.get(name);
    if (!r) continue;
    r.subs.delete(call);
    if (r.subs.size === 0 && r.seq === 0) rooms.delete(name);
  }
  call.rooms = [];
}

const impl = {
  Send(call, callback) {
    const user = userOf(call);
    if (!user) return callback(fail(grpc.status.UNAUTHENTICATED, "no user: send the header x-user"));
    const { room, text, client_msg_id } = call.request;
    if (!room || !ROOM.test(room)) return callback(fail(grpc.status.INVALID_ARGUMENT, "bad room"));
    if (!text || Buffer.byteLength(text) > 4096) return callback(fail(grpc.status.INVALID_ARGUMENT, "text must be 1 to 4096 bytes"));
    const r = roomOf(room);
    const now = Date.now();
    const message = {
      id: randomUUID(),
      room,
      seq: ++r.seq,
      from: user,
      text,
      sent_at: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
      client_msg_id: client_msg_id ?? "",
      region: REGION,
    };
    if (r.subs.size > 0) {
      const bytes = encodeEvent({ message });
      for (const sub of r.subs) {
        // writableLength counts the events this call has not yet handed to HTTP/2.
        if (sub.writableLength >= QUEUE) {
          drop(sub);
          sub.emit("error", fail(grpc.status.RESOURCE_EXHAUSTED, `this stream fell ${QUEUE} events behind and was closed`));
          continue;
        }
        sub.write(bytes);
      }
    }
    callback(null, { message });
  },

  Subscribe(call) {
    const user = userOf(call);
    if (!user) return call.emit("error", fail(grpc.status.UNAUTHENTICATED, "no user: send the header x-user"));
    const names = [...new Set(call.request.rooms ?? [])];
    if (names.some((n) => !ROOM.test(n))) return call.emit("error", fail(grpc.status.INVALID_ARGUMENT, "bad room"));
    call.rooms = names;
    call.on("cancelled", () => drop(call));
    call.on("close", () => drop(call));
    call.write({ ready: { user, region: REGION, session_id: randomUUID() } });
    for (const name of names) {
      const r = roomOf(name);
      r.subs.add(call);
      call.write({ joined: { room: name, last_seq: r.seq } });
    }
  },
};

const server = new grpc.Server();
server.addService(service, impl);
const host = process.env.HOST || "127.0.0.1";
server.bindAsync(`${host}:${process.env.PORT || 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: "listening", port, server: "grpc-js", version: VERSION }));
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.forceShutdown();
    process.exit(0);
  });
}
