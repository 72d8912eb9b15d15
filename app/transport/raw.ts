// Reaching under Connect to the HTTP stream, for the one thing Connect cannot do: end a response
// whose client stopped reading. Its pending write never completes, so no trailer can follow it.
import type http from "node:http";
import http2 from "node:http2";
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";

type NodeServerRequest = http.IncomingMessage | http2.Http2ServerRequest;

const rawRequestKey = createContextKey<NodeServerRequest | undefined>(undefined, { description: "node request" });

export function rawContextValues(req: NodeServerRequest) {
  return createContextValues().set(rawRequestKey, req);
}

/**
 * Resets the call's stream if it is still open after `graceMs`: HTTP/2 with RST_STREAM
 * ENHANCE_YOUR_CALM (gRPC clients report RESOURCE_EXHAUSTED), HTTP/1.1 by closing the socket.
 */
export function resetIfStuck(ctx: HandlerContext, graceMs: number): void {
  const req = ctx.values.get(rawRequestKey);
  if (!req) return;
  const h2 = "stream" in req ? req.stream : undefined;
  const timer = setTimeout(() => {
    if (h2) {
      if (!h2.closed) h2.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    } else if (!req.socket.destroyed && req.socket.writableNeedDrain) {
      // HTTP/1.1 has no per-response reset; the socket carries this one response only while it
      // streams, so closing it harms no one else.
      req.socket.destroy();
    }
  }, graceMs);
  timer.unref?.();
  (h2 ?? req.socket).once("close", () => clearTimeout(timer));
}
