// The pure parts of the edgechat command: the simulator's per-room bookkeeping, quantiles, the
// token's durations, DM room names, the WebSocket close reasons.
import { describe, expect, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { dmPartner, dmRoom } from "./chat-session.ts";
import { mayBeCommand, roomLabel } from "./chat.ts";
import { codeName } from "./connection.ts";
import { RoomView, SimClient, SimStats } from "./sim-client.ts";
import { quantile } from "./sim-report.ts";
import { parseDuration, tokenCommand } from "./token.ts";
import { createAuthenticator } from "../core/auth.ts";
import { closeError, wsUrl } from "./ws-stream.ts";

describe("RoomView", () => {
  test("in order: every seq after the baseline once", () => {
    const v = new RoomView(10);
    expect([11, 12, 13].map((s) => v.receive(s))).toEqual(["ok", "ok", "ok"]);
    expect(v.contig).toBe(13);
    expect(v.has(12)).toBe(true);
    expect(v.has(14)).toBe(false);
  });

  test("a seq seen before is a duplicate; one below the highest seen is out of order", () => {
    const v = new RoomView(0);
    expect(v.receive(1)).toBe("ok");
    expect(v.receive(1)).toBe("duplicate");
    expect(v.receive(3)).toBe("ok"); // a gap: 2 is missing for now
    expect(v.contig).toBe(1);
    expect(v.receive(2)).toBe("out-of-order");
    expect(v.contig).toBe(3);
    expect(v.receive(3)).toBe("duplicate");
  });

  test("expects what was sent after the join and before the end", () => {
    const v = new RoomView(5);
    v.until = 8;
    expect([5, 6, 8, 9].map((s) => v.expects(s))).toEqual([false, true, true, false]);
  });

  test("lost counts acknowledged messages never received", () => {
    const stats = new SimStats();
    const c = new SimClient({ url: "http://x", protocol: "grpc", user: "u", rooms: ["r"], headers: {}, stats });
    const v = new RoomView(0);
    c.views.set("r", v);
    for (const seq of [1, 2, 3, 4]) stats.ack("r", seq);
    v.receive(1);
    v.receive(3);
    expect(c.expected()).toBe(4);
    expect(c.lost()).toBe(2);
    expect(c.caughtUp()).toBe(false);
    v.receive(2);
    v.receive(4);
    expect(c.lost()).toBe(0);
    expect(c.caughtUp()).toBe(true);
  });
});

test("quantile: nearest rank", () => {
  const v = Array.from({ length: 100 }, (_, i) => i + 1);
  expect([0.5, 0.9, 0.99, 1].map((q) => quantile(v, q))).toEqual([50, 90, 99, 100]);
  expect(quantile([], 0.5)).toBe(0);
  expect(quantile([7], 0.99)).toBe(7);
});

test("parseDuration", () => {
  expect(["90", "90s", "15m", "1h", "7d"].map(parseDuration)).toEqual([90, 90, 900, 3600, 604800]);
  expect(() => parseDuration("soon")).toThrow('cannot read the duration "soon"');
  expect(() => parseDuration("0h")).toThrow("more than 0 seconds");
});

test("direct-message rooms and labels", () => {
  expect(dmRoom("bob", "alice")).toBe("dm:alice:bob");
  expect(dmPartner("dm:alice:bob", "alice")).toBe("bob");
  expect(dmPartner("dm:alice:bob", "bob")).toBe("alice");
  expect(dmPartner("lobby", "bob")).toBeUndefined();
  expect(roomLabel("dm:alice:bob", "alice")).toBe("@bob");
  expect(roomLabel("ops", "alice")).toBe("ops");
});

test("Connect code names and the gateway's close reasons", () => {
  expect(codeName(Code.ResourceExhausted)).toBe("resource_exhausted");
  expect(codeName(Code.Unavailable)).toBe("unavailable");
  const e = closeError(1008, "resource_exhausted: this stream fell 1000 events behind");
  expect(e.code).toBe(Code.ResourceExhausted);
  expect(e.rawMessage).toBe("this stream fell 1000 events behind");
  expect(closeError(1006, "").code).toBe(Code.Unavailable);
  expect(wsUrl("https://chat.example.com")).toBe("wss://chat.example.com/ws");
  expect(wsUrl("http://127.0.0.1:8080/")).toBe("ws://127.0.0.1:8080/ws");
});

describe("typing notices", () => {
  test("wait while what is typed may still be a command, old or new", () => {
    for (const partial of ["", "/", "/jo", "l", "lis", "list", "c", "conn", "connect", "connect ", "connect bo", "connect bob "]) {
      expect([partial, mayBeCommand(partial)]).toEqual([partial, true]);
    }
    for (const partial of ["h", "listen", "list of", "cat", "connected", "connect bob now", "co-op"]) {
      expect([partial, mayBeCommand(partial)]).toEqual([partial, false]);
    }
  });
});

test("edgechat token --admin signs the claim the server reads as a server-wide admin; without it, none", async () => {
  const secret = "x".repeat(40);
  const auth = createAuthenticator({ jwtSecret: secret });
  const who = async (args: string[]) => {
    const out: string[] = [];
    expect(await tokenCommand(["--user", "root", ...args], { EDGECHAT_JWT_SECRET: secret }, (s) => out.push(s))).toBe(0);
    return auth.identify({ get: (name) => (name === "authorization" ? `Bearer ${out[0]}` : null) });
  };
  expect((await who(["--admin"]))?.admin).toBe(true);
  expect((await who([]))?.admin).toBe(false);
});
