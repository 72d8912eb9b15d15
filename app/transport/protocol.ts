import type { HandlerContext } from "@connectrpc/connect";

/** "grpc", "grpc_web" or "connect", read off the request's content type. */
export function protocolOf(ctx: HandlerContext): string {
  const type = ctx.requestHeader.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) return "grpc_web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect";
}
