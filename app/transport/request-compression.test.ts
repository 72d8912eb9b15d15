import { expect, test } from "bun:test";
import { gzipSync, brotliCompressSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { decompress, decompresses } from "./request-compression.ts";

test("the direct path decompresses what connect-node's adapter accepts by default, and nothing else", () => {
  // The adapter fills in its default list on the options it is given.
  const options: Parameters<typeof connectNodeAdapter>[0] = { routes: () => {} };
  connectNodeAdapter(options);
  const names = (options.acceptCompression ?? []).map((c) => c.name);
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) expect(decompresses(name)).toBe(true);
  for (const name of ["identity", "deflate", "snappy", "zstd", ""]) expect(decompresses(name)).toBe(false);
});

test("decompress: gzip and br round-trip; past the limit ResourceExhausted, garbage InvalidArgument, with connect-node's texts", async () => {
  const text = new TextEncoder().encode("héllo ".repeat(100));
  expect(await decompress("gzip", gzipSync(text), 1000)).toEqual(text);
  expect(await decompress("br", brotliCompressSync(text), 1000)).toEqual(text);
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => "no error",
      (e) => `${Code[ConnectError.from(e).code]}: ${ConnectError.from(e).rawMessage}`,
    );
  expect(await failure(decompress("gzip", gzipSync(text), 100))).toBe(
    "ResourceExhausted: message is larger than configured readMaxBytes 100 after decompression",
  );
  expect(await failure(decompress("gzip", new Uint8Array([1, 2, 3, 4, 5]), 100))).toBe("InvalidArgument: decompression failed");
});
