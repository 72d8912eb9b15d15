// Not a contender but a floor: what Bun's node:http2 alone does for this load. A chat server
// reduced to the wire: Subscribe joins rooms and gets a `joined` event per room; Send puts the
// message's text into a `message` event, written to every subscriber of the room, and answers
// with an empty SendResponse. Nothing is stored, validated, sequenced or counted; frames are
// encoded by hand and written once per stream per turn of the event loop, as edgechat's direct
// gRPC path does. Run it in the harness with --contenders edgechat,bun-h2-floor: edgechat's
// distance to it is what edgechat itself costs on top of Bun's HTTP/2.
import http2 from "node:http2";
import net from "node:net";

const rooms = new Map<string, Set<http2.ServerHttp2Stream>>();
const pending = new Map<http2.ServerHttp2Stream, Buffer[]>();
let scheduled = false;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const field = (tag: number, b: Buffer) => Buffer.concat([Buffer.from([tag, ...varint(b.length)]), b]);
function frame(payload: Buffer): Buffer {
  const f = Buffer.alloc(5 + payload.length);
  f.writeUInt32BE(payload.length, 1);
  payload.copy(f, 5);
  return f;
}
/** The length-delimited fields numbered `want` of a protobuf message. */
function strings(buf: Buffer, want: number): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < buf.length) {
    const tag = buf[p++];
    let len = 0;
    let shift = 0;
    let b: number;
    do {
      b = buf[p++];
      len |= (b & 127) << shift;
      shift += 7;
    } while (b & 128);
    if ((tag & 7) !== 2) throw new Error("unexpected wire type");
    if (tag >> 3 === want) out.push(buf.subarray(p, p + len));
    p += len;
  }
  return out;
}

function flush(): void {
  scheduled = false;
  for (const [stream, frames] of pending) if (!stream.closed) stream.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  pending.clear();
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
  const chunks: Buffer[] = [];
  stream.on("error", () => {});
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    const body = Buffer.concat(chunks).subarray(5);
    if (headers[":path"] === "/chat.v1.ChatService/Subscribe") {
      const names = strings(body, 1).map(String);
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.write(Buffer.concat(names.map((r) => frame(field(0x42, field(0x0a, Buffer.from(r)))))));
      for (const r of names) {
        let set = rooms.get(r);
        if (!set) rooms.set(r, (set = new Set()));
        set.add(stream);
      }
      stream.on("close", () => {
        for (const r of names) rooms.get(r)?.delete(stream);
      });
      return;
    }
    const [room] = strings(body, 1).map(String);
    const [text] = strings(body, 3);
    const event = frame(field(0x12, field(0x2a, text ?? Buffer.alloc(0))));
    for (const s of rooms.get(room) ?? []) {
      const list = pending.get(s);
      if (list) list.push(event);
      else pending.set(s, [event]);
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame(Buffer.alloc(0)));
  });
});
const front = net.createServer({ noDelay: true }, (socket) => server.emit("connection", socket));
front.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ msg: "listening", port: (front.address() as net.AddressInfo).port }));
});
