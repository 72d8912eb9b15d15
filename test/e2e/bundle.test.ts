// The production bundle (npm run build -> dist/) is what the container and the benchmark run: it
// must serve what the sources serve. Built here, then driven through both RPC paths (gRPC served
// on the stream, Connect), the writer thread (every Send commits there), history and the web page.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { chatClient, Reader, transport } from "../support/clients.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";

let server: ServerProcess;

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, stderr: "pipe" });
  expect(build.exitCode, build.stderr.toString()).toBe(0);
  server = await startServer({}, undefined, "dist/app/main.js");
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

test("the bundle serves Send and Subscribe over gRPC and Connect, stores history, and serves the web page", async () => {
  const grpc = chatClient(transport(server.url, "grpc"));
  const connect = chatClient(transport(server.url, "connect"));
  const as = (user: string) => ({ headers: { "x-user": user } });
  const abort = new AbortController();
  const sub = new Reader(grpc.subscribe({ rooms: ["lobby"] }, { ...as("sub"), signal: abort.signal }));
  await sub.until((r) => r.of("joined").length === 1, 5000, "joined");

  const first = await grpc.send({ target: { case: "room", value: "lobby" }, text: "over grpc" }, as("ann"));
  const second = await connect.send({ target: { case: "room", value: "lobby" }, text: "over connect" }, as("bob"));
  expect([first.message?.seq, second.message?.seq]).toEqual([1n, 2n]);
  await sub.until((r) => r.messages("lobby").length === 2, 5000, "both messages");
  expect(sub.messages("lobby").map((m) => m.text)).toEqual(["over grpc", "over connect"]);

  const page = await connect.history({ room: "lobby", limit: 10 }, as("ann"));
  expect(page.messages.map((m) => m.text)).toEqual(["over grpc", "over connect"]);

  const html = await fetch(`${server.url}/`);
  expect(html.status).toBe(200);
  // The page's script is built from app/web by the bundled server and served from /assets.
  const src = /<script[^>]*src="(\/assets\/[^"]+\.js)"/.exec(await html.text())?.[1];
  expect(src).toBeDefined();
  const js = await fetch(`${server.url}${src}`);
  expect(js.status).toBe(200);
  expect((await js.text()).length).toBeGreaterThan(1000);
  abort.abort();
  await sub.finished;
});
