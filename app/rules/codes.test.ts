// The wire names of the codes, checked against the Connect protocol's list.
import { expect, test } from "bun:test";
import { Code } from "@connectrpc/connect";
import { codeFromName, codeName } from "./codes.ts";

const WIRE = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

test("every code has the Connect protocol's name, and back", () => {
  expect(WIRE.map((_, i) => codeName(i + 1))).toEqual(WIRE);
  for (const [i, name] of WIRE.entries()) expect(codeFromName(name)).toBe(i + 1);
  expect(codeName(Code.ResourceExhausted)).toBe("resource_exhausted");
  expect(codeName(99 as Code)).toBe("unknown");
  expect(codeFromName("nope")).toBeUndefined();
});
