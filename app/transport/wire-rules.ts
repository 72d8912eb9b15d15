// Rules of the gRPC and Connect wire that both request paths apply, so that the same input gets
// the same answer whichever path serves it: the direct path (direct.ts) calls them
// itself, the Connect path gets them through connect-wire.ts.
import { Code, ConnectError } from "@connectrpc/connect";

/** The only flag a request envelope may carry, on every protocol that envelopes requests. */
export const COMPRESSED = 0x01;

/**
 * Whether a request envelope's flags are acceptable: only the compressed bit is defined for a
 * request (gRPC's HTTP/2 spec; gRPC-Web's 0x80 marks trailers, which only a response has), and it
 * needs a compression named in `encodingHeader`.
 */
export function requestFlagsError(flags: number, compressed: boolean, encodingHeader: string): ConnectError | undefined {
  if (flags & ~COMPRESSED) {
    return new ConnectError(`invalid envelope flags ${flags}: only the compressed bit (1) is defined for a request`, Code.InvalidArgument);
  }
  if (flags & COMPRESSED && !compressed) {
    return new ConnectError(`the request message is compressed but ${encodingHeader} names no compression`, Code.InvalidArgument);
  }
  return undefined;
}

const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The grpc-timeout header in milliseconds: 1 to 8 digits and a unit (H, M, S, m, u, n). */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(String(value));
  if (!m) throw new ConnectError(`invalid grpc-timeout "${value}": expected 1 to 8 digits and a unit (H, M, S, m, u, n)`, Code.InvalidArgument);
  return Number(m[1]) * TIMEOUT_UNITS_MS[m[2]];
}

/**
 * grpc-message is percent-encoded: every byte outside printable ASCII, and "%" itself (gRPC's
 * HTTP/2 spec). Not encodeURIComponent, which also encodes ":" and ";", and which grpc-js then
 * shows as "%3A" (it decodes only what the spec encodes).
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The connect-timeout-ms header in milliseconds: 1 to 10 digits (Connect's protocol). */
export function parseConnectTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(String(value))) {
    throw new ConnectError(`invalid connect-timeout-ms "${value}": expected 1 to 10 digits`, Code.InvalidArgument);
  }
  return Number(value);
}
