// The per-user token buckets and the text checks, on a clock the test moves.
import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { checkText, RateLimiter } from "./limits.ts";

const refusal = (f: () => void) => {
  try {
    f();
    return "taken";
  } catch (err) {
    const e = err as ConnectError;
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
};

test("a burst, then the rate: the refusal says the limit and the wait", () => {
  let now = 0;
  const limiter = new RateLimiter(2, 3, "messages", () => now);
  for (let i = 0; i < 3; i++) expect(refusal(() => limiter.take("ann"))).toBe("taken");
  expect(refusal(() => limiter.take("ann"))).toBe("ResourceExhausted: rate limit: at most 2 messages per second (bursts of 3); retry in 500 ms");
  // Others have buckets of their own.
  expect(refusal(() => limiter.take("ben"))).toBe("taken");
  now = 499;
  expect(refusal(() => limiter.take("ann"))).toStartWith("ResourceExhausted: rate limit");
  // A second later, two tokens (the rate), not the burst.
  now = 1000;
  expect(refusal(() => limiter.take("ann"))).toBe("taken");
  expect(refusal(() => limiter.take("ann"))).toBe("taken");
  expect(refusal(() => limiter.take("ann"))).toStartWith("ResourceExhausted");
});

test("a refused take costs nothing: the wait is the same however often the client retries", () => {
  let now = 0;
  const limiter = new RateLimiter(1, 1, "joins and leaves", () => now);
  limiter.take("ann");
  for (let i = 0; i < 5; i++)
    expect(refusal(() => limiter.take("ann"))).toBe("ResourceExhausted: rate limit: at most 1 joins and leaves per second (bursts of 1); retry in 1000 ms");
  now = 1000;
  expect(refusal(() => limiter.take("ann"))).toBe("taken");
});

test("sweep forgets the buckets that refilled, so memory follows the active users", () => {
  let now = 0;
  const limiter = new RateLimiter(10, 10, "messages", () => now);
  limiter.take("ann");
  limiter.take("ben");
  for (let i = 0; i < 10; i++) limiter.take("cat");
  expect(limiter.size).toBe(3);
  now = 100;
  limiter.sweep();
  // ann and ben took one token each, back after 100 ms; cat is still refilling.
  expect(limiter.size).toBe(1);
  now = 1000;
  limiter.sweep();
  expect(limiter.size).toBe(0);
});

test("rate 0 is no limit", () => {
  const limiter = new RateLimiter(0, 0);
  for (let i = 0; i < 1000; i++) limiter.take("ann");
  expect(limiter.size).toBe(0);
});

test("checkText: empty, not UTF-8 and too long are refused with what is wrong", () => {
  expect(checkText("héllo", 6)).toBe("héllo");
  expect(refusal(() => checkText("", 10))).toBe("InvalidArgument: text is empty: send 1 or more characters");
  expect(refusal(() => checkText("a\uD800b", 10))).toBe("InvalidArgument: text is not valid UTF-8");
  expect(refusal(() => checkText("héllo", 5))).toBe("InvalidArgument: text is 6 bytes; the limit is 5 bytes of UTF-8");
});
