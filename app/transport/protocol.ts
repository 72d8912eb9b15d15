import type { HandlerContext } from "@connectrpc/connect";

/** "grpc", "grpc_web" or "connect", read off the request's content type. */
export function protocolOf(ctx: HandlerContext): string {
  return protocolOfHeader(ctx.requestHeader);
}

export function protocolOfHeader(header: Headers): string {
  const type = header.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) return "grpc_web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect";
}
