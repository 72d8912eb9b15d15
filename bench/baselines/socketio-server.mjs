// Baseline: a socket.io chat server, what many teams pick for chat, written as socket.io is meant
// to be used. Run with `node`; PORT=0 picks a free port and the first stdout line is
// {"msg":"listening","port":N}, as edgechat logs it.
//
// - The user and the rooms to enter come with the handshake (`auth: { user, rooms }`), as
//   edgechat's Subscribe takes them; the server answers with `ready`, then `joined` per room.
// - `join` (room, ack) enters one more room; `send` ({ room, text, clientMsgId }, ack) posts a
//   message: it is broadcast as `message` to the room with io.to(room).emit (socket.io encodes a
//   broadcast once and writes the same packet to every socket), then acked with { message }.
// - Rooms are socket.io's own (socket.join, the default in-memory adapter); seq per room in a Map.
//   No history, no durability. Default server options, except that the client bundle is not served.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Server } from "socket.io";

const VERSION = JSON.parse(readFileSync(createRequire(import.meta.url).resolve("socket.io/package.json"), "utf8")).version;
const REGION = "local";
const ROOM = /^[A-Za-z0-9_.:-]{1,64}$/;
const seqs = new Map();

const http = createServer();
const io = new Server(http, { serveClient: false });

io.use((socket, next) => {
  const { user, rooms } = socket.handshake.auth ?? {};
  if (typeof user !== "string" || !user) return next(new Error("no user: pass auth.user"));
  if (rooms !== undefined && (!Array.isArray(rooms) || rooms.some((r) => typeof r !== "string" || !ROOM.test(r)))) {
    return next(new Error("bad rooms"));
  }
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.emit("ready", { user, region: REGION, sessionId: socket.id });
  for (const room of socket.handshake.auth.rooms ?? []) {
    socket.join(room);
    socket.emit("joined", { room, lastSeq: seqs.get(room) ?? 0 });
  }

  socket.on("join", (room, ack) => {
    if (typeof ack !== "function") return;
    if (typeof room !== "string" || !ROOM.test(room)) return ack({ error: "bad room" });
    socket.join(room);
    ack({ room, lastSeq: seqs.get(room) ?? 0 });
  });

  socket.on("send", (req, ack) => {
    if (typeof ack !== "function") return;
    const { room, text, clientMsgId } = req ?? {};
    if (typeof room !== "string" || !ROOM.test(room)) return ack({ error: "bad room" });
    if (typeof text !== "string" || !text || Buffer.byteLength(text) > 4096) return ack({ error: "text must be 1 to 4096 bytes" });
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    const message = { id: randomUUID(), room, seq, from: user, text, sentAt: Date.now(), clientMsgId: clientMsgId ?? "", region: REGION };
    io.to(room).emit("message", message);
    ack({ message });
  });
});

http.listen(Number(process.env.PORT || 0), process.env.HOST || "127.0.0.1", () => {
  const { port } = /** @type {import("node:net").AddressInfo} */ (http.address());
  console.log(JSON.stringify({ msg: "listening", port, server: "socket.io", version: VERSION }));
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    void io.close();
    process.exit(0);
  });
}
