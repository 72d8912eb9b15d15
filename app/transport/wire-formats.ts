// The three HTTP protocols a streaming call may speak, where they differ: the content types that
// name them and their codec, the headers for the deadline and the request's compression, and how
// the response carries its final status (gRPC: HTTP/2 trailers; gRPC-Web: a trailer frame at the
// end of the body; Connect: an end-of-stream message with a JSON status). Everything else (the
// 5-byte message framing, the rules in wire-rules.ts) they share.
import type { ConnectError } from "@connectrpc/connect";
import { envelope, type Codec } from "./event-frames.ts";
import { codeName } from "../rules/codes.ts";
import { encodeGrpcMessage, parseConnectTimeout, parseTimeout } from "./wire-rules.ts";

export type WireName = "grpc" | "grpc_web" | "connect";

type HeaderValue = string | string[] | undefined;

export interface Wire {
  /** The protocol, as the metrics label it. */
  readonly name: WireName;
  readonly codec: Codec;
  /** The response's content type: the request's own. */
  readonly contentType: string;
  /** The header that names the request messages' compression. */
  readonly encodingHeader: string;
  /** Whether the status goes in HTTP trailers (gRPC), rather than at the end of the body. */
  readonly trailers: boolean;
  /** The call's deadline in ms from its headers; throws InvalidArgument for a bad value. */
  timeoutMs(header: (name: string) => HeaderValue): number | undefined;
  /** The frame that ends the body with the status, for the protocols that carry it there. */
  endFrame(err: ConnectError | undefined): Uint8Array | undefined;
  /** The HTTP trailers that carry the status (gRPC). */
  trailerFields(err: ConnectError | undefined): Record<string, string>;
}

const TRAILER_FLAG = 0x80; // gRPC-Web: this frame holds the trailers
const END_STREAM_FLAG = 0x02; // Connect: this frame is the end-of-stream message
const encoder = new TextEncoder();

function grpcStatus(err: ConnectError | undefined): Record<string, string> {
  return err ? { "grpc-status": String(err.code), "grpc-message": encodeGrpcMessage(err.rawMessage) } : { "grpc-status": "0" };
}

const grpcTimeout = (header: (name: string) => HeaderValue) => parseTimeout(header("grpc-timeout"));

function wire(name: WireName, codec: Codec, contentType: string): Wire {
  switch (name) {
    case "grpc":
      return {
        name,
        codec,
        contentType,
        encodingHeader: "grpc-encoding",
        trailers: true,
        timeoutMs: grpcTimeout,
        endFrame: () => undefined,
        trailerFields: grpcStatus,
      };
    case "grpc_web":
      return {
        name,
        codec,
        contentType,
        encodingHeader: "grpc-encoding",
        trailers: false,
        timeoutMs: grpcTimeout,
        endFrame: (err) => {
          const fields = Object.entries(grpcStatus(err))
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join("");
          return envelope(encoder.encode(fields), TRAILER_FLAG);
        },
        trailerFields: () => ({}),
      };
    case "connect":
      return {
        name,
        codec,
        contentType,
        encodingHeader: "connect-content-encoding",
        trailers: false,
        timeoutMs: (header) => parseConnectTimeout(header("connect-timeout-ms")),
        endFrame: (err) => {
          const end = err ? { error: { code: codeName(err.code), message: err.rawMessage } } : {};
          return envelope(encoder.encode(JSON.stringify(end)), END_STREAM_FLAG);
        },
        trailerFields: () => ({}),
      };
  }
}

const WIRES = new Map<string, Wire>();
for (const [prefix, name] of [
  ["application/grpc", "grpc"],
  ["application/grpc-web", "grpc_web"],
] as const) {
  WIRES.set(prefix, wire(name, "proto", prefix));
  WIRES.set(`${prefix}+proto`, wire(name, "proto", `${prefix}+proto`));
  WIRES.set(`${prefix}+json`, wire(name, "json", `${prefix}+json`));
}
WIRES.set("application/connect+proto", wire("connect", "proto", "application/connect+proto"));
WIRES.set("application/connect+json", wire("connect", "json", "application/connect+json"));

/**
 * The streaming protocol and codec a request's content type names, or undefined for another. The
 * same types as connect-es accepts: any case, and a charset of UTF-8 after a JSON one.
 */
export function wireOf(contentType: HeaderValue): Wire | undefined {
  if (typeof contentType !== "string") return undefined;
  const type = contentType.toLowerCase();
  return WIRES.get(type) ?? WIRES.get(type.replace(/^(application\/[a-z-]+\+json); ?charset=utf-?8$/, "$1"));
}
