// The server API through the real server: a key made by `edgechat apikey` in EDGECHAT_API_KEYS;
// Publish over Connect JSON as curl sends it, reaching a user's stream; grpc-js (the .proto files)
// calling with the key, with a user's token, and a key on the user API; Disconnect over gRPC-Web
// ending a user's Chat stream and /ws connection with the reason; each call logged with the key's name.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import { closeAllClients, connect, failure, grpc, services, unary } from "../support/grpc-js.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";
import { bearer, mintToken, TEST_SECRET } from "../support/tokens.ts";
import { WsClient } from "../support/ws-client.ts";
import { createClient } from "@connectrpc/connect";
import { ServerService } from "../../app/gen/chat/v1/server_pb.ts";

let server: ServerProcess;
let key: string;
let readKey: string;

/** `edgechat apikey`: the key on stdout, its configuration line last on stderr. */
async function apikey(...args: string[]): Promise<{ key: string; line: string }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "app/cli/main.ts"), "apikey", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, err).toBe(0);
  return { key: out.trim(), line: err.trim().split("\n").at(-1)! };
}

beforeAll(async () => {
  const [all, read] = [await apikey("--name", "backend"), await apikey("--name", "reports", "--scopes", "read")];
  [key, readKey] = [all.key, read.key];
  server = await startServer({ EDGECHAT_JWT_SECRET: TEST_SECRET, EDGECHAT_API_KEYS: `${all.line}; ${read.line}` });
});
afterAll(async () => {
  closeAllClients();
  await server.stop();
});

test("Publish with curl's JSON reaches a user's stream; grpc-js with the key, with a user's token, and a key on the user API", async () => {
  const ann = await mintToken("ann");
  const sub = new Reader(chatClient(transport(server.url, "connect")).subscribe({ rooms: ["ops"] }, { headers: bearer(ann) }));
  await sub.until((r) => r.of("joined").length > 0, 5000, "joined");
  const res = await fetch(`${server.url}/chat.v1.ServerService/Publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ room: "ops", from: "deploy-bot", text: "v42 is live", idempotencyKey: "deploy-42" }),
  });
  const body = await res.json();
  expect([res.status, body.message.from, body.message.seq]).toEqual([200, "deploy-bot", "1"]);
  await sub.until((r) => r.messages("ops").some((m) => m.text === "v42 is live" && m.from === "deploy-bot"), 5000, "the bot's message");

  const grpcJs = connect(services.serverV1, server.port);
  const page = await unary(grpcJs, "History", { room: "ops", after_seq: "0" }, withBearer(key));
  expect(page.messages.map((m: { text: string }) => m.text)).toEqual(["v42 is live"]);
  const refused = await failure(unary(grpcJs, "Publish", { room: "ops", from: "ann", text: "x" }, withBearer(ann)));
  expect([refused.code, refused.details]).toEqual([grpc.status.UNAUTHENTICATED, "the server API takes an API key (ek_...), not a user's token"]);
  const scope = await failure(unary(grpcJs, "Publish", { room: "ops", from: "x", text: "x" }, withBearer(readKey)));
  expect([scope.code, scope.details]).toEqual([grpc.status.PERMISSION_DENIED, 'the API key "reports" does not have the scope "publish"']);
  // A key on the user API, on the direct path (gRPC Send) and on /ws: refused, saying where it belongs.
  const keyOnUserApi = await failure(unary(connect(services.chatV1, server.port), "Send", { room: "ops", text: "x" }, withBearer(key)));
  expect([keyOnUserApi.code, keyOnUserApi.details]).toEqual([
    grpc.status.UNAUTHENTICATED,
    "this is an API key: it works on chat.v1.ServerService only; users call ChatService with their own token",
  ]);
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`, { headers: { authorization: `Bearer ${key}` } });
  await ws.finished;
  expect(ws.of("error").map((e) => [e.code, e.text])).toEqual([
    ["unauthenticated", "this is an API key: it works on chat.v1.ServerService only; users call ChatService with their own token"],
  ]);
  // A browser's request, however it got the key: refused.
  const fromPage = await fetch(`${server.url}/chat.v1.ServerService/History`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, origin: "https://app.example" },
    body: "{}",
  });
  expect([fromPage.status, (await fromPage.json()).code]).toEqual([403, "permission_denied"]);
  const calls = server.logs.filter((l) => l.msg === "server api call").map((l) => [l.key, l.method]);
  expect(calls).toEqual([
    ["backend", "Publish"],
    ["backend", "History"],
  ]);
});

test("Disconnect over gRPC-Web ends the user's Chat stream and /ws connection with the reason; others stay", async () => {
  const [eve, bob] = [await mintToken("eve"), await mintToken("bob")];
  const chat = openChat(chatClient(transport(server.url, "grpc")), undefined, bearer(eve));
  const ws = new WsClient(`ws://127.0.0.1:${server.port}/ws`, { headers: bearer(eve) });
  const other = new WsClient(`ws://127.0.0.1:${server.port}/ws`, { headers: bearer(bob) });
  await chat.reader.until((r) => r.of("ready").length > 0, 5000, "Chat ready");
  await ws.until((c) => c.of("ready").length > 0, "/ws ready");
  await other.until((c) => c.of("ready").length > 0, "bob's /ws ready");
  const admin = createClient(ServerService, transport(server.url, "grpc-web", "1.1"));
  await admin.disconnect({ user: "eve", reason: "account closed" }, { headers: { authorization: `Bearer ${key}` } });
  await chat.reader.finished;
  expect([chat.reader.error?.code, chat.reader.error?.rawMessage]).toEqual([7, "the server disconnected you: account closed"]);
  await ws.finished;
  expect(ws.of("error").at(-1)?.text).toBe("the server disconnected you: account closed");
  await Bun.sleep(100);
  expect(other.closed).toBeUndefined();
  await other.close();
});

function withBearer(credential: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${credential}`);
  return md;
}
