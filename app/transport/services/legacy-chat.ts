// chat.ChatService/ChatStream on the Connect path: the old Go service's API, served unchanged so its
// CLI and load simulator keep working. Its rules are in legacy-conversation.ts, which the direct
// path (direct.ts) serves too.
import type { ConnectRouter } from "@connectrpc/connect";
import { ChatService } from "../../gen/chat/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import { asConnectError } from "../../core/events.ts";
import { userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { streamSession } from "../session-stream.ts";
import { forLegacyClient } from "../../core/advice.ts";
import { converse, identify, translate } from "./legacy-conversation.ts";

/** The old API on the Connect path. */
export function registerLegacyChat(router: ConnectRouter, core: ChatCore): void {
  router.service(ChatService, {
    async *chatStream(requests, ctx) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) return;
      const s = await core.open(identify(first.value, ctx.values.get(userKey)), protocolOf(ctx));
      void converse(core, s, first.value, { [Symbol.asyncIterator]: () => it });
      try {
        for await (const event of streamSession(core, s, ctx)) {
          const out = translate(event, s.user);
          if (out) yield out;
        }
      } catch (err) {
        throw forLegacyClient(asConnectError(err));
      }
    },
  });
}

