// What this project assumes of connect-es's internal exports (connect-internals.ts).
import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, encodeEnvelope, errorToJsonBytes, trailerFlag, trailerParse, trailerSerialize } from "./connect-internals.ts";
import { envelope } from "./event-frames.ts";

test("encodeEnvelope: a flags byte, a big-endian 4-byte length, the data (as event-frames.ts writes them)", () => {
  const data = new Uint8Array(300).fill(7);
  expect(encodeEnvelope(0x80, data)).toEqual(envelope(data, 0x80));
});

test("gRPC-Web trailers: the 0x80 flag, and 'name: value' lines that parse back", () => {
  expect(trailerFlag).toBe(0x80);
  const t = new Headers({ "grpc-status": "3", "grpc-message": "bad%20room" });
  const bytes = trailerSerialize(t);
  expect(new TextDecoder().decode(bytes)).toBe("grpc-message: bad%20room\r\ngrpc-status: 3\r\n");
  const back = trailerParse(bytes);
  expect([back.get("grpc-status"), back.get("grpc-message")]).toEqual(["3", "bad%20room"]);
});

test("the Connect protocol's JSON error and HTTP statuses", () => {
  const err = new ConnectError("cannot decode the request: a string field is not valid UTF-8", Code.InvalidArgument);
  expect(JSON.parse(new TextDecoder().decode(errorToJsonBytes(err, undefined)))).toEqual({
    code: "invalid_argument",
    message: "cannot decode the request: a string field is not valid UTF-8",
  });
  expect([codeToHttpStatus(Code.InvalidArgument), codeToHttpStatus(Code.Internal), codeToHttpStatus(Code.Unauthenticated)]).toEqual([400, 500, 401]);
});
