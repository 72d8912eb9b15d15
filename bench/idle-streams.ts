// Memory per idle stream: N HTTP/2 connections, each with one open Subscribe stream, against a real
// server process; the server's RSS before and after. Run: bun bench/idle-streams.ts [N ...]
// Prints one JSON line per N. Used to size fly.toml's concurrency limits (docs/deploy.md).
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { SubscribeRequestSchema } from "../app/gen/chat/v1/chat_pb.ts";
import { envelope } from "../app/transport/event-frames.ts";
import { startServer } from "../test/support/server.ts";

const counts = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

async function open(url: string, i: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url);
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/chat.v1.ChatService/Subscribe",
    "content-type": "application/grpc",
    te: "trailers",
    "x-user": `idle${i}`,
  });
  req.on("error", () => {});
  req.end(envelope(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: [`room${i % 100}`] }))));
  // Wait for the first events (ready, joined): the stream is open and registered.
  await new Promise<void>((resolve) => req.once("data", () => resolve()));
  return session;
}

for (const n of counts.length ? counts : [1000]) {
  const server = await startServer({ EDGECHAT_RATE_PER_SECOND: "0" }, undefined);
  const pid = server.proc.pid;
  await Bun.sleep(500);
  const before = rss(pid);
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < n; i += 100) sessions.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => open(server.url, i + k)))));
  await Bun.sleep(1000);
  const after = rss(pid);
  console.log(
    JSON.stringify({
      streams: n,
      rss_before_mib: +(before / 1048576).toFixed(1),
      rss_after_mib: +(after / 1048576).toFixed(1),
      per_stream_kib: +((after - before) / n / 1024).toFixed(1),
    }),
  );
  for (const s of sessions) s.destroy();
  await server.stop();
}
process.exit(0);
