// Compressed requests on the direct path are decompressed by connect-node's own algorithms: the
// ones its adapter accepts by default (rpc.ts leaves that default), with its limit on the
// decompressed size and its error codes and texts, so that a compressed request gets the same
// answer on either path. A request in another compression goes to connect-node, which refuses it.
// Loaded on the first compressed message: a cold start does not evaluate connect-node.
import type { Compression } from "@connectrpc/connect/protocol";

/** The compressions connectNodeAdapter accepts when given none (its acceptCompression default). */
const NAMES = new Set(["gzip", "br"]);

let algorithms: Promise<Map<string, Compression>> | undefined;

/** Whether the direct path decompresses requests in `name` (a grpc-encoding or connect-content-encoding value). */
export function decompresses(name: string): boolean {
  return NAMES.has(name);
}

/** The message decompressed; ResourceExhausted past `maxBytes`, InvalidArgument for bytes that do not decompress. */
export async function decompress(name: string, bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  algorithms ??= import("@connectrpc/connect-node").then(
    ({ compressionGzip, compressionBrotli }) => new Map([compressionGzip, compressionBrotli].map((c) => [c.name, c])),
  );
  const algorithm = (await algorithms).get(name);
  if (!algorithm) throw new Error(`no ${name} decompression: decompresses() said yes to a name connect-node does not have`);
  return algorithm.decompress(bytes, maxBytes);
}
