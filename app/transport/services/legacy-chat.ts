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
          if (first.value.targetId) connect(s, state, first.value.targetId);
          await line(core, s, state, first.value.message);
          for (let r = await it.next(); !r.done; r = await it.next()) await line(core, s, state, r.value.message);
          s.end();
        } catch (err) {
          await core.close(s, asConnectError(err));
        }
      })();
      for await (const event of streamSession(core, s, ctx)) {
        const out = translate(event, user);
        if (out) yield out;
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
  const cmd = /^connect\s+(\S+)$/.exec(trimmed);
  if (cmd) return connect(s, state, cmd[1]);
  if (!state.partner) return reply(s, HINT);
  try {
    await core.send(s.user, { toUser: state.partner }, text, "", s.protocol);
  } catch (err) {
    reply(s, `Not sent: ${asConnectError(err).rawMessage}`);
  }
}

function connect(s: Session, state: { partner: string }, id: string): void {
  try {
    checkUserId(id, "partner id");
    if (id === s.user) return reply(s, "You cannot connect to yourself.");
    state.partner = id;
    reply(s, `Connected to ${id}.`);
  } catch (err) {
    reply(s, asConnectError(err).rawMessage);
  }
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
