import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { CloseCode, closeCodeFor, closeReason } from "./ws.ts";

test("close codes follow the error that ended the session", () => {
  const e = (code: Code) => new ConnectError("x", code);
  expect(closeCodeFor(undefined, false)).toBe(CloseCode.normal);
  expect(closeCodeFor(e(Code.Unauthenticated), false)).toBe(4401);
  expect(closeCodeFor(e(Code.PermissionDenied), false)).toBe(4403);
  expect(closeCodeFor(e(Code.ResourceExhausted), false)).toBe(1008);
  expect(closeCodeFor(e(Code.InvalidArgument), false)).toBe(1008);
  expect(closeCodeFor(e(Code.Unavailable), true)).toBe(1001);
  expect(closeCodeFor(e(Code.Unavailable), false)).toBe(1013);
  expect(closeCodeFor(e(Code.Internal), false)).toBe(1011);
});

test("the reason is '<code>: <message>', cut to the 123 bytes of a close frame", () => {
  const slow = new ConnectError("this stream fell 1000 events behind and was closed; reconnect and resume with since_seq", Code.ResourceExhausted);
  expect(closeReason(slow)).toBe("resource_exhausted: this stream fell 1000 events behind and was closed; reconnect and resume with since_seq");
  const long = closeReason(new ConnectError("é".repeat(200), Code.Unauthenticated));
  expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
  expect(long.startsWith("unauthenticated: éé")).toBe(true);
  expect(long.endsWith("é…")).toBe(true);
});
