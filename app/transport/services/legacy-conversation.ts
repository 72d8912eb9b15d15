// The old Go service's chat, as a conversation: the first message names the user; "list" and
// "connect <id>" are commands; any other text is a direct message to the partner, in the same
// dm:<a>:<b> room as the v1 API, so old and new clients talk to each other. The server answers as
// user "Server". direct.ts serves the stream; these are its rules.
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ChatMessageSchema, type ChatMessage } from "../../gen/chat/chat_pb.ts";
import { MessageSchema, type ChatEvent } from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import { asConnectError, messageEvent } from "../../core/events.ts";
import { checkUserId, dmParticipants } from "../../rules/names.ts";
import type { Session } from "../../core/session.ts";

export const SERVER_USER = "Server";
const HINT = "You have no chat partner yet: type `list` to see who is online, then `connect <id>`.";

/**
 * One old client's lines, from its first message on, until it half-closes (the session then ends
 * OK) or a line cannot be handled (the session ends with that error). Old clients know nothing of
 * since_seq: whoever ends the stream gives them forLegacyClient's advice.
 */
export async function converse(core: ChatCore, s: Session, first: ChatMessage, rest: AsyncIterable<ChatMessage>): Promise<void> {
  const state = { partner: "" };
  try {
    if (first.targetId) await connect(core, s, state, first.targetId);
    await line(core, s, state, first.message);
    for await (const m of rest) {
      if (s.closed) return;
      await line(core, s, state, m.message);
    }
    s.end();
  } catch (err) {
    await core.close(s, asConnectError(err));
  }
}

/** The user is the token's; without auth, the first message's. A mismatch is a forgery. */
export function identify(first: ChatMessage, authenticated: string | undefined): string {
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
  const online = await core.isOnline(id, "", s.user);
  reply(s, online ? `Connected to ${id}.` : `Connected to ${id}, who is not online now; your messages are kept for them.`);
}

/** Server replies ride the session's queue, in order with messages, as messages of no room. */
function reply(s: Session, text: string): void {
  s.push(messageEvent(create(MessageSchema, { room: "", from: SERVER_USER, text })));
}

/** What an old client sees of an event of its session, if anything. */
export function translate(event: ChatEvent, user: string): ChatMessage | undefined {
  if (event.kind.case === "error") {
    return create(ChatMessageSchema, { user: SERVER_USER, targetId: user, message: event.kind.value.text, timestamp: nowSeconds() });
  }
  if (event.kind.case !== "message") return undefined;
  const m = event.kind.value;
  if (m.room === "") return create(ChatMessageSchema, { user: SERVER_USER, targetId: user, message: m.text, timestamp: nowSeconds() });
  // Old clients print what they type themselves, and know nothing of rooms or of changes.
  if (m.from === user || !dmParticipants(m.room) || m.update) return undefined;
  const seconds = m.sentAt ? BigInt(Math.floor(timestampMs(m.sentAt) / 1000)) : nowSeconds();
  return create(ChatMessageSchema, { user: m.from, targetId: user, message: m.text, timestamp: seconds });
}

const nowSeconds = () => BigInt(Math.floor(Date.now() / 1000));
