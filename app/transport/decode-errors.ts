// A request that cannot be decoded (a string field that is not UTF-8, truncated protobuf) is the
// client's fault: it gets InvalidArgument. @connectrpc/connect's binary codec reports every decode
// failure as Internal "parse binary: ...", so this maps it, whatever the protocol:
// - streaming requests are decoded while the implementation reads them: an interceptor sees the error;
// - a unary request is decoded before interceptors run: its error response is rewritten instead
//   (the Connect protocol's JSON body here; gRPC and gRPC-Web trailers in connect-wire.ts).
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "./connect-internals.ts";

const PARSE = /^parse binary: /;

/** The InvalidArgument for a decode failure, or undefined for any other error. */
export function decodeError(code: Code | number, message: string): ConnectError | undefined {
  if (code !== Code.Internal || !PARSE.test(message)) return undefined;
  return requestDecodeError(message.replace(PARSE, ""));
}

/** The InvalidArgument for a request message that protobuf-es could not decode, with its reason. */
export function requestDecodeError(detail: string): ConnectError {
  const text = /utf-?8/i.test(detail) ? "cannot decode the request: a string field is not valid UTF-8" : `cannot decode the request: ${detail}`;
  return new ConnectError(text, Code.InvalidArgument);
}

/** Streaming RPCs: a request message that fails to decode ends the call with InvalidArgument. */
export function decodeErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) return next(req);
    const messages = req.message;
    async function* mapped() {
      try {
        yield* messages;
      } catch (err) {
        throw (err instanceof ConnectError && decodeError(err.code, err.rawMessage)) || err;
      }
    }
    return next({ ...req, message: mapped() });
  };
}

/**
 * Unary RPCs: wraps the router's unary handlers in place. Call it at the end of the `routes`
 * function given to connectNodeAdapter, which builds its path table from router.handlers after.
 */
export function mapUnaryDecodeErrors(router: ConnectRouter): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const h = handlers[i];
    if (h.method.methodKind !== "unary") continue;
    const wrapped = async (req: Parameters<UniversalHandler>[0]) => rewrite(await h(req));
    handlers[i] = Object.assign(wrapped, h) as UniversalHandler;
  }
}

async function rewrite(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  // gRPC and gRPC-Web carry the status in trailers, which connect-wire.ts rewrites for every call.
  const type = res.header?.get("content-type") ?? "";
  if (res.status !== codeToHttpStatus(Code.Internal) || !res.body || !type.startsWith("application/json")) return res;
  // Connect unary: the error is the JSON body.
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let e: ConnectError | undefined;
  try {
    const json = JSON.parse(bytes.toString("utf8")) as { code?: string; message?: string };
    if (json.code === "internal") e = decodeError(Code.Internal, json.message ?? "");
  } catch {
    // not JSON: leave it
  }
  if (!e) return { ...res, body: once(bytes) };
  const body = errorToJsonBytes(e, undefined);
  res.header?.set("content-length", String(body.byteLength));
  return { ...res, status: codeToHttpStatus(e.code), body: once(body) };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
