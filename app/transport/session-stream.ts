import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { ChatCore } from "../core/chat.ts";
import type { Session } from "../core/session.ts";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { resetIfStuck } from "./raw.ts";
import { STUCK_GRACE_MS } from "../core/limits.ts";


/** Streams a session's events until it ends or the call is aborted; then closes the session. */
export async function* streamSession(core: ChatCore, s: Session, ctx: HandlerContext): AsyncGenerator<ChatEvent> {
  // A cancel or a passed deadline (grpc-timeout) aborts the call: end the session with that reason,
  // so that a deadline ends the stream with DEADLINE_EXCEEDED, as grpc-go does, not OK.
  const onAbort = () => void core.close(s, ConnectError.from(ctx.signal.reason, Code.Canceled));
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  void s.ended.then((err) => err && resetIfStuck(ctx, STUCK_GRACE_MS));
  try {
    yield* s.events();
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await core.close(s);
  }
}
