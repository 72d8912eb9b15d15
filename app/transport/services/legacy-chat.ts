// chat.ChatService/ChatStream: the old Go service's API, served unchanged so its CLI and load
// simulator keep working. The first message names the user; "list" and "connect <id>" are
// commands; any other text is a direct message to the partner, in the same dm:<a>:<b> room as the
// v1 API, so old and new clients talk to each other. The server answers as user "Server".
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { ChatMessageSchema, ChatService, type ChatMessage } from "../../gen/chat/chat_pb.ts";
import { MessageSchema, type ChatEvent } from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import { asConnectError, messageEvent } from "../../core/events.ts";
import { checkUserId, dmParticipants } from "../../core/names.ts";
import type { Session } from "../../core/session.ts";
import { userKey } from "../context.ts";
import { protocolOf } from "../protocol.ts";
import { streamSession } from "../session-stream.ts";
import { forLegacyClient } from "../../core/advice.ts";

export const SERVER_USER = "Server";
const HINT = "You have no chat partner yet: type `list` to see who is online, then `connect <id>`.";

export function registerLegacyChat(router: ConnectRouter, core: ChatCore): void {
  router.service(ChatService, {
    async *chatStream(requests, ctx) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) return;
      const user = identify(first.value, ctx.values.get(userKey));
      const s = await core.open(user, protocolOf(ctx));
      const state = { partner: "" };
      void (async () => {
        try {
          if (first.value.targetId) await connect(core, s, state, first.value.targetId);
          await line(core, s, state, first.value.message);
          for (let r = await it.next(); !r.done; r = await it.next()) await line(core, s, state, r.value.message);
          s.end();
        } catch (err) {
          await core.close(s, asConnectError(err));
        }
      })();
      try {
        for await (const event of streamSession(core, s, ctx)) {
          const out = translate(event, user);
          if (out) yield out;
        }
      } catch (err) {
        // Old clients know nothing of since_seq: tell them what they can do.
        throw forLegacyClient(asConnectError(err));
      }
    },
  });
}

/** The user is the token's; without auth, the first message's. A mismatch is a forgery. */
function identify(first: ChatMessage, authenticated: string | undefined): string {
  if (authenticated) {
    if (first.user && first.user !== authenticated) {
      throw new ConnectError(`you are signed in as "${authenticated}" but the first message names "${first.user}"`, Code.PermissionDenied);
    }
    return authenticated;
  }
  if (!first.user) throw new ConnectError("the first message must name you in its user field", Code.InvalidArgument);
  return checkUserId(first.user, "user");
}

async function line(core: ChatCore, s: Session, state: { partner: string }, text: string): Promise<void> {
  const trimmed = text.trim();
  if (!trimmed) return;
  if (trimmed === "list") {
    const others = (await core.listOnline(s.user, "", s.protocol)).map((e) => e.user).filter((u) => u !== s.user);
    return reply(s, others.length ? `Online users: ${others.join(", ")}` : "Nobody else is online.");
  }
  // Any line that starts with "connect" and a blank is a command, whatever follows: a bad id gets
  // the id rules, never a delivery.
  const cmd = /^connect\s+(.*)$/.exec(trimmed);
  if (cmd) return connect(core, s, state, cmd[1].trim());
  if (!state.partner) return reply(s, HINT);
  try {
    await core.send(s.user, { toUser: state.partner }, text, "", s.protocol);
  } catch (err) {
    reply(s, `Not sent: ${asConnectError(err).rawMessage}`);
  }
}

/**
 * Picks the partner. A refused connect clears the partner and says so: the next line must not go
 * to someone the user no longer expects. (The original server took any id; edgechat's ids are
 * narrower, and the refusal says which.)
 */
async function connect(core: ChatCore, s: Session, state: { partner: string }, id: string): Promise<void> {
  const refuse = (why: string) => {
    const had = state.partner;
    state.partner = "";
    reply(s, `Not connected: ${why}.${had ? ` You are no longer connected to ${had}.` : ""}`);
  };
  if (id === s.user) return refuse("you cannot connect to yourself");
  try {
    checkUserId(id, "partner id");
  } catch (err) {
    return refuse(asConnectError(err).rawMessage);
  }
  state.partner = id;
  const online = await core.isOnline(id, "");
  reply(s, online ? `Connected to ${id}.` : `Connected to ${id}, who is not online now; your messages are kept for them.`);
}

/** Server replies ride the session's queue, in order with messages, as messages of no room. */
function reply(s: Session, text: string): void {
  s.push(messageEvent(create(MessageSchema, { room: "", from: SERVER_USER, text })));
}

function translate(event: ChatEvent, user: string): ChatMessage | undefined {
  if (event.kind.case === "error") {
    return create(ChatMessageSchema, { user: SERVER_USER, targetId: user, message: event.kind.value.text, timestamp: nowSeconds() });
  }
  if (event.kind.case !== "message") return undefined;
  const m = event.kind.value;
  if (m.room === "") return create(ChatMessageSchema, { user: SERVER_USER, targetId: user, message: m.text, timestamp: nowSeconds() });
  // Old clients print what they type themselves, and know nothing of rooms.
  if (m.from === user || !dmParticipants(m.room)) return undefined;
  const seconds = m.sentAt ? BigInt(Math.floor(timestampMs(m.sentAt) / 1000)) : nowSeconds();
  return create(ChatMessageSchema, { user: m.from, targetId: user, message: m.text, timestamp: seconds });
}

const nowSeconds = () => BigInt(Math.floor(Date.now() / 1000));
