// The server's own metrics endpoint, after real traffic over every protocol.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { chatClient, openChat, Reader, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";
import { scrape } from "../support/metrics.ts";
import { mintToken } from "../support/tokens.ts";

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ EDGECHAT_RATE_PER_SECOND: "1", EDGECHAT_RATE_BURST: "3" });
});
afterAll(async () => {
  await server.stop();
});

test("RPCs, sessions, deliveries and refusals are counted", async () => {
  const grpc = chatClient(transport(server.url, "grpc"));
  const web = chatClient(transport(server.url, "grpc-web", "1.1"));
  const chat = openChat(grpc, "ann");
  await chat.send({ kind: { case: "join", value: { room: "m" } } });
  await chat.reader.until((r) => r.of("joined").length === 1);
  const sub = new Reader(web.subscribe({ rooms: ["m"] }, { headers: { "x-user": "ben" } }));
  await sub.until((r) => r.of("joined").length === 1);
  for (let i = 0; i < 3; i++) await chat.send({ kind: { case: "send", value: { target: { case: "room", value: "m" }, text: `hi ${i}` } } });
  await sub.until((r) => r.messages("m").length === 3);
  // The fourth send within a second trips the limit (burst 3).
  const limited = await web
    .send({ target: { case: "room", value: "m" }, text: "one too many" }, { headers: { "x-user": "ann" } })
    .catch((e) => ConnectError.from(e));
  expect((limited as ConnectError).code).toBe(Code.ResourceExhausted);
  await grpc.history({ room: "bad room" }, { headers: { "x-user": "ann" } }).catch(() => {});

  const m = await scrape(server.metricsUrl);
  const v1 = (type: string, method: string) => `grpc_type="${type}",grpc_service="chat.v1.ChatService",grpc_method="${method}"`;
  expect(m.get(`grpc_server_started_total{${v1("bidi_stream", "Chat")}}`)).toBe(1);
  expect(m.get(`grpc_server_msg_received_total{${v1("bidi_stream", "Chat")}}`)).toBe(4);
  expect(m.get(`grpc_server_msg_sent_total{${v1("server_stream", "Subscribe")}}`)).toBeGreaterThanOrEqual(5);
  expect(m.get(`grpc_server_handled_total{${v1("unary", "Send")},grpc_code="ResourceExhausted"}`)).toBe(1);
  expect(m.get(`grpc_server_handled_total{${v1("unary", "History")},grpc_code="InvalidArgument"}`)).toBe(1);
  expect(m.get(`grpc_server_handling_seconds_count{${v1("unary", "History")}}`)).toBe(1);
  expect(m.get(`grpc_server_handling_seconds_bucket{le="+Inf",${v1("unary", "History")}}`)).toBe(1);
  expect(m.get('edgechat_sessions_open{protocol="grpc"}')).toBe(1);
  expect(m.get('edgechat_sessions_open{protocol="grpc_web"}')).toBe(1);
  expect(m.get('edgechat_messages_accepted_total{protocol="grpc"}')).toBe(3);
  expect(m.get('edgechat_rate_limited_total{protocol="grpc_web",limit="send"}')).toBe(1);
  expect(m.get("edgechat_messages_delivered_total")).toBe(6);
  expect(m.get("edgechat_delivery_latency_seconds_count")).toBe(6);
  expect(m.get("edgechat_rooms")).toBe(1);
  expect(m.get("edgechat_tasks")).toBeGreaterThanOrEqual(2);
  for (const name of ["bun_jsc_heap_size_bytes", "bun_mimalloc_allocations_total", "bun_threads", "process_cpu_seconds_total", "process_open_fds"]) {
    expect(m.get(name)).toBeGreaterThan(0);
  }

  chat.close();
  await chat.reader.finished;
  const after = await scrape(server.metricsUrl);
  expect(after.get(`grpc_server_handled_total{${v1("bidi_stream", "Chat")},grpc_code="OK"}`)).toBe(1);
  expect(after.get('edgechat_sessions_open{protocol="grpc"}')).toBe(0);
});

test("metrics are not served on the public port", async () => {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(404);
  expect(new URL(server.metricsUrl).hostname).toBe("127.0.0.1");
});

test("auth failures are counted by reason", async () => {
  const secured = await startServer({ EDGECHAT_JWT_SECRET: "metrics-secret-metrics-secret-32b" });
  try {
    const client = chatClient(transport(secured.url, "connect"));
    const fail = (headers: Record<string, string>) => client.listRooms({}, { headers }).catch(() => {});
    await fail({});
    await fail({ authorization: `Bearer ${await mintToken("ann", { secret: "another-secret-another-secret-32" })}` });
    await client.listRooms({}, { headers: { authorization: `Bearer ${await mintToken("ann", { secret: "metrics-secret-metrics-secret-32b" })}` } });
    const m = await scrape(secured.metricsUrl);
    expect(m.get('edgechat_auth_failures_total{protocol="connect",reason="missing"}')).toBe(1);
    expect(m.get('edgechat_auth_failures_total{protocol="connect",reason="signature"}')).toBe(1);
    expect(m.get('grpc_server_handled_total{grpc_type="unary",grpc_service="chat.v1.ChatService",grpc_method="ListRooms",grpc_code="Unauthenticated"}')).toBe(
      2,
    );
    expect(m.get('grpc_server_handled_total{grpc_type="unary",grpc_service="chat.v1.ChatService",grpc_method="ListRooms",grpc_code="OK"}')).toBe(1);
  } finally {
    await secured.stop();
  }
});
