// The wire rules both request paths apply: request envelope flags, grpc-timeout and grpc-message
// (gRPC over HTTP/2 spec).
import { describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeGrpcMessage, parseTimeout, requestFlagsError } from "./wire-rules.ts";

function thrown(f: () => unknown): ConnectError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected a throw");
}

describe("parseTimeout", () => {
  test("every unit, in milliseconds", () => {
    expect(parseTimeout("1S")).toBe(1000);
    expect(parseTimeout("250m")).toBe(250);
    expect(parseTimeout("3M")).toBe(180_000);
    expect(parseTimeout("1H")).toBe(3_600_000);
    expect(parseTimeout("5u")).toBeCloseTo(0.005, 12);
    expect(parseTimeout("100n")).toBeCloseTo(0.0001, 12);
    expect(parseTimeout("0m")).toBe(0);
    // 8 digits is the most the spec allows.
    expect(parseTimeout("99999999S")).toBe(99_999_999_000);
  });

  test("no header: no deadline", () => {
    expect(parseTimeout(undefined)).toBeUndefined();
  });

  for (const bad of ["1s", "123456789S", "", "S", "1", "-1S", "1.5S", " 1S", "1S ", "abc", "1X"]) {
    test(`invalid ${JSON.stringify(bad)}: InvalidArgument naming the header`, () => {
      const e = thrown(() => parseTimeout(bad));
      expect(e.code).toBe(Code.InvalidArgument);
      expect(e.rawMessage).toContain("grpc-timeout");
      expect(e.rawMessage).toContain(`"${bad}"`);
    });
  }
});

describe("encodeGrpcMessage", () => {
  test("printable ASCII is unchanged, ';' and ':' included", () => {
    const s = `room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "a b"); try again`;
    expect(encodeGrpcMessage(s)).toBe(s);
    expect(encodeGrpcMessage(" ~!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}")).toBe(" ~!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}");
    expect(encodeGrpcMessage("")).toBe("");
  });

  test("'%', non-ASCII and control characters are percent-encoded as UTF-8 bytes", () => {
    expect(encodeGrpcMessage("%")).toBe("%25");
    expect(encodeGrpcMessage("100% done")).toBe("100%25 done");
    expect(encodeGrpcMessage("é")).toBe("%C3%A9");
    expect(encodeGrpcMessage("a\nb")).toBe("a%0Ab");
    expect(encodeGrpcMessage("\t\r\x7f")).toBe("%09%0D%7F");
    expect(encodeGrpcMessage("日本")).toBe("%E6%97%A5%E6%9C%AC");
    expect(encodeGrpcMessage("🙂")).toBe("%F0%9F%99%82");
  });

  test("decodeURIComponent gives back the original", () => {
    for (const s of ["plain; with: punctuation", "%", "%25 is not double-decoded", "é and 日本 and 🙂", "line\nbreak\r\n", "tab\t%0A literal"]) {
      const encoded = encodeGrpcMessage(s);
      // Only printable ASCII goes on the wire.
      expect(/^[\x20-\x7e]*$/.test(encoded)).toBe(true);
      expect(decodeURIComponent(encoded)).toBe(s);
    }
  });
});

describe("requestFlagsError", () => {
  test("no flags, or the compressed bit with a compression named: fine", () => {
    expect(requestFlagsError(0, false, "grpc-encoding")).toBeUndefined();
    expect(requestFlagsError(1, true, "grpc-encoding")).toBeUndefined();
  });

  test("any other bit, gRPC-Web's trailer flag included: InvalidArgument naming the flags", () => {
    for (const flags of [0x80, 0x02, 0x81, 0xff]) {
      const e = requestFlagsError(flags, true, "grpc-encoding")!;
      expect([e.code, e.rawMessage]).toEqual([Code.InvalidArgument, `invalid envelope flags ${flags}: only the compressed bit (1) is defined for a request`]);
    }
  });

  test("compressed without a compression: InvalidArgument naming the protocol's header", () => {
    const e = requestFlagsError(1, false, "connect-content-encoding")!;
    expect([e.code, e.rawMessage]).toEqual([Code.InvalidArgument, "the request message is compressed but connect-content-encoding names no compression"]);
  });
});
