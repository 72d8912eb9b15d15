// The advice old-API clients get instead of since_seq, which they do not have.
import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { drainEnd, drainRefusal, fellBehind, forLegacyClient, historyUnavailable } from "./advice.ts";

test("every end that says to resume with since_seq tells an old client to reconnect and connect again; the code stays", () => {
  expect([drainEnd(), historyUnavailable(), fellBehind(1000)].map((e) => [forLegacyClient(e).code, forLegacyClient(e).rawMessage])).toEqual([
    [Code.Unavailable, "server is shutting down; reconnect, then connect to your partner again"],
    [Code.Unavailable, "history is unavailable; reconnect, then connect to your partner again"],
    [Code.ResourceExhausted, "this stream fell 1000 events behind and was closed; reconnect, then connect to your partner again"],
  ]);
});

test("other errors, a semicolon in them included, pass unchanged", () => {
  const refusal = drainRefusal();
  expect(forLegacyClient(refusal)).toBe(refusal);
  const other = new ConnectError('room "a;b" is not valid; pick another', Code.InvalidArgument);
  expect(forLegacyClient(other)).toBe(other);
});
