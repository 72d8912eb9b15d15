// TLS on the same port: ALPN picks HTTP/2 for gRPC and HTTP/1.1 for plain HTTPS clients.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../../app/gen/chat/v1/chat_pb.ts";
import { startServer, type ServerProcess } from "../support/server.ts";

let server: ServerProcess;
let ca: Buffer;
let caPath: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-tls-"));
  const made = Bun.spawnSync([
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ]);
  expect(made.exitCode).toBe(0);
  caPath = join(dir, "cert.pem");
  ca = readFileSync(caPath);
  server = await startServer({ EDGECHAT_TLS_CERT: join(dir, "cert.pem"), EDGECHAT_TLS_KEY: join(dir, "key.pem") });
});
afterAll(async () => {
  await server.stop();
});

test("gRPC over TLS (ALPN h2)", async () => {
  const client = createClient(ChatService, createGrpcTransport({ baseUrl: `https://localhost:${server.port}`, nodeOptions: { ca } }));
  const res = await client.send({ target: { case: "room", value: "secure" }, text: "over tls" }, { headers: { "x-user": "ann" } });
  expect(res.message?.seq).toBe(1n);
});

test("Connect over TLS with HTTP/1.1", async () => {
  const client = createClient(
    ChatService,
    createConnectTransport({ baseUrl: `https://localhost:${server.port}`, httpVersion: "1.1", nodeOptions: { ca } }),
  );
  const res = await client.history({ room: "secure" }, { headers: { "x-user": "ben" } });
  expect(res.messages.map((m) => m.text)).toEqual(["over tls"]);
});

test("ALPN offers h2 and http/1.1 to plain HTTPS clients", () => {
  const version = (flag: string) =>
    Bun.spawnSync(["curl", "-s", flag, "--cacert", caPath, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", `https://localhost:${server.port}/healthz`])
      .stdout.toString();
  expect(version("--http1.1")).toBe("200 1.1");
  expect(version("--http2")).toBe("200 2");
});
