// Session on its own: the bounded queue, the slow-consumer rule, and what a transport hears.
import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { heartbeatEvent, pongEvent } from "./events.ts";
import { Session, type SessionHooks } from "./session.ts";

const pong = (n: number) => pongEvent(String(n));
const nonces = (events: ReturnType<Session["take"]>) => events.map((e) => (e.kind.case === "pong" ? e.kind.value.nonce : e.kind.case));

test("take hands out everything queued, in push order, and nothing stays pending", () => {
  const s = new Session("s1", "ann", "grpc", 10);
  for (let i = 1; i <= 5; i++) expect(s.push(pong(i))).toBe(true);
  expect(s.pending).toBe(5);
  expect(nonces(s.take())).toEqual(["1", "2", "3", "4", "5"]);
  expect(s.pending).toBe(0);
  s.push(pong(6));
  expect(nonces(s.take())).toEqual(["6"]);
  expect(s.take()).toEqual([]);
});

test("the sink hears each push and the end, and comes back to take", () => {
  const s = new Session("s1", "ann", "grpc", 10);
  let calls = 0;
  s.attach({ readable: () => calls++ });
  s.push(pong(1));
  s.push(pong(2));
  expect(calls).toBe(2);
  s.end();
  expect(calls).toBe(3);
  // Queued events are still written after an end without discard, then the stream ends OK.
  expect(nonces(s.take())).toEqual(["1", "2"]);
  expect(s.closed).toBe(true);
  expect(s.error).toBeUndefined();
  expect(s.push(pong(3))).toBe(false);
});

test("a reader a whole queue behind: the session ends with ResourceExhausted, its queue dropped, fellBehind set", async () => {
  const ended: (ConnectError | undefined)[] = [];
  const hooks: SessionHooks = { written: () => {}, ended: (_s, err) => ended.push(err) };
  const s = new Session("s1", "ann", "grpc", 3, hooks);
  for (let i = 1; i <= 3; i++) expect(s.push(pong(i))).toBe(true);
  expect(s.fellBehind).toBe(false);
  expect(s.push(pong(4))).toBe(false);
  expect(s.closed).toBe(true);
  expect(s.fellBehind).toBe(true);
  expect(s.pending).toBe(0);
  expect(s.error?.code).toBe(Code.ResourceExhausted);
  expect(s.error?.rawMessage).toStartWith("this stream fell 3 events behind and was closed; ");
  expect(ended).toEqual([s.error]);
  expect(await s.ended).toBe(s.error);
});

test("the hooks hear every event handed out, and one end whoever ends it", () => {
  const written: string[] = [];
  let ends = 0;
  const s = new Session("s1", "ann", "grpc", 10, { written: (_s, e) => written.push(e.kind.case ?? ""), ended: () => ends++ });
  s.push(heartbeatEvent());
  s.push(pong(1));
  s.take();
  s.end(new ConnectError("bye", Code.Unavailable));
  s.end();
  expect(written).toEqual(["heartbeat", "pong"]);
  expect(ends).toBe(1);
  expect(s.error?.rawMessage).toBe("bye");
});

test("waitForRoom resolves once that many events fit, or at the end", async () => {
  const s = new Session("s1", "ann", "grpc", 4);
  for (let i = 1; i <= 3; i++) s.push(pong(i));
  let roomy = false;
  const waiting = s.waitForRoom(2).then(() => (roomy = true));
  await Bun.sleep(1);
  expect(roomy).toBe(false);
  s.take();
  await waiting;
  expect(roomy).toBe(true);
  // Already room: at once. Ended: at once, whatever the queue.
  await s.waitForRoom(1);
  s.push(pong(4));
  s.push(pong(5));
  const pending = s.waitForRoom(4);
  s.end();
  await pending;
});

test("ended settles for a session already over, and typing state is made only when used", async () => {
  const s = new Session("s1", "ann", "grpc", 4);
  s.forgetTyping("r");
  s.end(new ConnectError("x", Code.Canceled));
  expect((await s.ended)?.code).toBe(Code.Canceled);
  s.typingAt.set("r", 1);
  s.forgetTyping("r");
  expect(s.typingAt.size).toBe(0);
});
