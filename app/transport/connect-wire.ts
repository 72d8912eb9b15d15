// The wire rules (wire-rules.ts) on the Connect path, where connect-es writes the wire itself and
// answers differently from the gRPC spec in two places. Every handler of the router is wrapped:
// - request envelopes (gRPC, gRPC-Web, Connect streaming) are checked as they stream in: connect-es
//   ignores reserved flag bits, or takes gRPC-Web's 0x80 for an end of stream, and answers Internal
//   to a compressed message without a compression, where the direct path answers InvalidArgument;
// - grpc-message, in gRPC trailers and gRPC-Web trailer envelopes, is re-encoded per the gRPC spec
//   (connect-es uses encodeURIComponent).
import type { ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { encodeEnvelope, trailerFlag, trailerParse, trailerSerialize } from "./connect-internals.ts";
import { decodeError } from "./decode-errors.ts";
import { encodeGrpcMessage, requestFlagsError } from "./wire-rules.ts";

/** Wraps the router's handlers in place; call it last in the `routes` function, as mapUnaryDecodeErrors. */
export function applyWireRules(router: ConnectRouter): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const h = handlers[i];
    const wrapped = async (req: UniversalServerRequest) => rewriteGrpcStatus(await h(checkRequestEnvelopes(req)));
    handlers[i] = Object.assign(wrapped, h) as UniversalHandler;
  }
}

/** The header that names the request's compression, for the protocols that envelope requests. */
function envelopeEncodingHeader(contentType: string): string | undefined {
  if (/^application\/grpc(-web)?(\+|;|$)/.test(contentType)) return "grpc-encoding";
  if (contentType.startsWith("application/connect+")) return "connect-content-encoding";
  return undefined;
}

function checkRequestEnvelopes(req: UniversalServerRequest): UniversalServerRequest {
  const header = envelopeEncodingHeader(req.header.get("content-type") ?? "");
  const body = req.body as unknown;
  if (!header || typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return req;
  const encoding = req.header.get(header);
  const compressed = encoding !== null && encoding !== "" && encoding !== "identity";
  return { ...req, body: checkedEnvelopes(body as AsyncIterable<Uint8Array>, compressed, header) };
}

/** The body unchanged, chunk by chunk, after checking the flags of each envelope that starts in it. */
async function* checkedEnvelopes(body: AsyncIterable<Uint8Array>, compressed: boolean, header: string): AsyncIterable<Uint8Array> {
  const head = new Uint8Array(5);
  let have = 0; // bytes of the current envelope's prefix seen
  let skip = 0; // bytes of the current message still to pass
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(5 - have, chunk.length - at);
      head.set(chunk.subarray(at, at + n), have);
      have += n;
      at += n;
      if (have < 5) continue;
      const err = requestFlagsError(head[0], compressed, header);
      if (err) throw err;
      skip = new DataView(head.buffer).getUint32(1);
      have = 0;
    }
    yield chunk;
  }
}

function rewriteGrpcStatus(res: UniversalServerResponse): UniversalServerResponse {
  const type = res.header?.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) {
    return res.body ? { ...res, body: mapChunks(res.body, rewriteTrailerEnvelope) } : res;
  }
  if (!type.startsWith("application/grpc")) return res;
  // A status in the headers (trailers-only) is final now; a streaming call's trailer is set when
  // its body ends, before the adapter writes it.
  rewriteStatus(res.header);
  rewriteStatus(res.trailer);
  return res.body ? { ...res, body: afterLast(res.body, () => rewriteStatus(res.trailer)) } : res;
}

/**
 * A status as this server writes it, whoever wrote it first: a request connect-es could not decode
 * gets InvalidArgument (decodeError), and grpc-message is percent-encoded per the gRPC spec
 * (connect-es's is encodeURIComponent's). Returns whether anything changed.
 */
function rewriteStatus(h: Headers | undefined): boolean {
  const m = h?.get("grpc-message");
  if (!h || !m) return false;
  let message: string;
  try {
    message = decodeURIComponent(m);
  } catch {
    return false; // not percent-encoding: leave it
  }
  const e = decodeError(Number(h.get("grpc-status")), message);
  if (e) h.set("grpc-status", String(e.code));
  h.set("grpc-message", encodeGrpcMessage(e ? e.rawMessage : message));
  return true;
}

function rewriteTrailerEnvelope(chunk: Uint8Array): Uint8Array {
  if (chunk.byteLength < 5 || chunk[0] !== trailerFlag) return chunk;
  const t = trailerParse(chunk.subarray(5));
  return rewriteStatus(t) ? encodeEnvelope(trailerFlag, trailerSerialize(t)) : chunk;
}

async function* mapChunks(body: AsyncIterable<Uint8Array>, f: (chunk: Uint8Array) => Uint8Array): AsyncIterable<Uint8Array> {
  for await (const chunk of body) yield f(chunk);
}

async function* afterLast(body: AsyncIterable<Uint8Array>, f: () => void): AsyncIterable<Uint8Array> {
  yield* body;
  f();
}
