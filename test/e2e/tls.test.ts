// TLS on the same port: ALPN picks HTTP/2 for gRPC and HTTP/1.1 for plain HTTPS clients.
import { afterAll, beforeAll, expect, test } from "bun:test";
import http2 from "node:http2";
import tls from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../../app/gen/chat/v1/chat_pb.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { selfSignedCert, type TestCert } from "../support/tls.ts";

let server: ServerProcess;
let ca: Buffer;
let caPath: string;
let cert: TestCert;

beforeAll(async () => {
  cert = selfSignedCert();
  caPath = cert.certPath;
  ca = cert.ca;
  server = await startServer(cert.env);
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
  const client = createClient(ChatService, createConnectTransport({ baseUrl: `https://localhost:${server.port}`, httpVersion: "1.1", nodeOptions: { ca } }));
  const res = await client.history({ room: "secure" }, { headers: { "x-user": "ben" } });
  expect(res.messages.map((m) => m.text)).toEqual(["over tls"]);
});

test("ALPN offers h2 and http/1.1 to plain HTTPS clients", () => {
  const version = (flag: string) =>
    Bun.spawnSync([
      "curl",
      "-s",
      flag,
      "--cacert",
      caPath,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{http_version}",
      `https://localhost:${server.port}/healthz`,
    ]).stdout.toString();
  expect(version("--http1.1")).toBe("200 1.1");
  expect(version("--http2")).toBe("200 2");
});

test("the connection rules hold over TLS too: a silent connection, an idle HTTP/2 one, a half-sent request", async () => {
  const strict = await startServer({
    ...cert.env,
    EDGECHAT_HEADERS_TIMEOUT_SECONDS: "1",
    EDGECHAT_IDLE_TIMEOUT_SECONDS: "1",
  });
  try {
    const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, Bun.sleep(ms).then(() => "too late" as const)]);
    // Handshake done, then nothing: closed at the headers timeout.
    const silent = tls.connect({ host: "127.0.0.1", port: strict.port, ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
    silent.on("error", () => {});
    await new Promise((resolve) => silent.once("secureConnect", resolve));
    expect(await within(new Promise((resolve) => silent.once("close", () => resolve("closed"))), 5000)).toBe("closed");

    // HTTP/2 without a stream: GOAWAY at the idle timeout.
    const idle = http2.connect(`https://localhost:${strict.port}`, { ca });
    idle.on("error", () => {});
    expect(await within(new Promise((resolve) => idle.once("goaway", () => resolve("goaway"))), 5000)).toBe("goaway");
    idle.destroy();

    // Half a request message on HTTP/2: the stream is reset at the headers timeout.
    const busy = http2.connect(`https://localhost:${strict.port}`, { ca });
    busy.on("error", () => {});
    const req = busy.request({ ":method": "POST", ":path": "/chat.v1.ChatService/Send", "content-type": "application/grpc", te: "trailers", "x-user": "half" });
    req.on("error", () => {});
    req.write(new Uint8Array([0, 0, 0, 0, 9, 0x0a]));
    expect(await within(new Promise((resolve) => req.once("close", () => resolve(req.rstCode))), 5000)).toBe(http2.constants.NGHTTP2_CANCEL);
    busy.destroy();
  } finally {
    await strict.stop();
  }
}, 20_000);
