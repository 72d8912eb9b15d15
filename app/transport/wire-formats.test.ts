// wireOf against connect-es's own parsers: every streaming content type connect-es accepts is one
// the direct path takes, with the same protocol and codec, so no stream falls through to a path
// that no longer serves streams.
import { expect, test } from "bun:test";
import * as grpc from "@connectrpc/connect/protocol-grpc";
import * as grpcWeb from "@connectrpc/connect/protocol-grpc-web";
import * as connect from "@connectrpc/connect/protocol-connect";
import { wireOf } from "./wire-formats.ts";

const candidates = ["grpc", "grpc-web", "grpc-web-text", "connect", "proto", "json", "foo"].flatMap((p) =>
  ["", "+proto", "+json", "+json; charset=utf-8", "+json;charset=UTF8", "+proto; charset=utf-8", "+json; charset=latin1"].flatMap((suffix) => [
    `application/${p}${suffix}`,
    `APPLICATION/${p.toUpperCase()}${suffix.toUpperCase()}`,
  ]),
);

test("wireOf takes exactly the streaming content types connect-es accepts, with the same protocol and codec", () => {
  for (const type of candidates) {
    const g = grpc.parseContentType(type);
    const w = grpcWeb.parseContentType(type);
    const c = connect.contentTypeStreamRegExp.test(type) ? connect.parseContentType(type) : undefined;
    const expected: { name: string; codec: string } | undefined = g
      ? { name: "grpc", codec: g.binary ? "proto" : "json" }
      : w && !w.text
        ? { name: "grpc_web", codec: w.binary ? "proto" : "json" }
        : c
          ? { name: "connect", codec: c.binary ? "proto" : "json" }
          : undefined;
    const wire = wireOf(type);
    expect([type, wire && ({ name: wire.name, codec: wire.codec } as { name: string; codec: string })]).toEqual([type, expected]);
  }
  expect(wireOf(undefined)).toBeUndefined();
  expect(wireOf(["application/grpc"])).toBeUndefined();
});
