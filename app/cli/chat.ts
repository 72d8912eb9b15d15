// `edgechat chat`: a terminal chat client on the Chat stream. Lines from stdin are commands
// (/join, /dm, ...) or messages to the current room or DM; events print as lines on stdout. Works
// the same on a terminal and on pipes (no prompt and no typing notices then).
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import * as readline from "node:readline";
import { parseArgs } from "node:util";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { PresenceAction, Role, RoomKind, type Message, type Presence } from "../gen/chat/v1/chat_pb.ts";
import { describeChange, describeUpdate } from "../rules/changes.ts";
import { Channel } from "./channel.ts";
import { ChatSession, dmPartner, dmRoom } from "./chat-session.ts";
import { isDmRoom } from "../rules/names.ts";
import { authHeaders, PROTOCOLS, type Protocol } from "./connection.ts";
import { parseDuration } from "./token.ts";
import { Reading } from "./reading.ts";
import { UNREAD_CAP } from "../rules/unread.ts";

const USAGE = `usage: edgechat chat [--url URL] [--user ID | --token JWT] [--room ROOM] [--protocol grpc|connect|grpc-web|websocket]

  --url       the server (default http://localhost:8080, or EDGECHAT_URL)
  --user      your user id, sent as x-user (servers in dev mode)
  --token     a JWT, sent as authorization: Bearer (default: EDGECHAT_TOKEN); see edgechat token
  --room      the room to start in (default lobby)
  --protocol  how the Chat stream travels (default grpc)`;

export const HELP = `commands:
  /join <room>      enter a room (shows its last messages) and talk there
  /leave [room]     leave a room (default: the current one)
  /rooms            the rooms on the server and yours
  /dm <user>        talk to a user directly (also: connect <user>)
  /list             who is online, and where (also: list)
  /history [n]      the last n messages here (default 20)
  /reply <@user|seq> <text>   answer someone's last message here, or the message with that seq
  /edit [#seq] <text>         change your last message here (or yours with that seq)
  /delete [#seq]              delete your last message here (or the one with that seq)
  /react [@user|#seq] <emoji> react to the last message here (or theirs, or that one); again: take it back
rooms with owners (in the current room):
  /create <room> [private] [title]   make a room you own, and talk there
  /members          who is in the room, their roles, who is muted or banned
  /invite <user>    add a member                /kick <user>   remove one
  /role <user> owner|admin|member               /topic <text>  set the topic
  /ban <user> [30m|2h|7d] [reason]              /unban <user>
  /mute <user> [30m|2h|7d]                      /unmute <user>
  /block <user>     no direct messages from them, no presence either way   /unblock <user>
  /help             this
  /quit             leave (also: end of input, Ctrl-D)
anything else is a message to the current room or user; start it with // to send a leading /`;

type Target = { kind: "room"; room: string } | { kind: "dm"; user: string; room: string };

const pad = (n: number) => String(n).padStart(2, "0");

export function hhmm(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** How a room shows in brackets: the room, or @partner for direct messages. */
export function roomLabel(room: string, me: string): string {
  const partner = dmPartner(room, me);
  return partner === undefined ? room : `@${partner}`;
}

/** A message as one line; a reply names what it answers (`quoted`, when the client has it). */
export function formatMessage(m: Message, me: string, quoted?: Message): string {
  const at = m.sentAt ? timestampDate(m.sentAt) : new Date();
  const change = describeChange(m) ?? describeUpdate(m);
  if (change !== undefined) return `${hhmm(at)} [${roomLabel(m.room, me)}] * ${change}`;
  const short = (t: string) => (t.length > 40 ? `${t.slice(0, 39)}…` : t);
  const re = m.replyTo > 0n ? (quoted ? ` (re ${quoted.from}: "${short(quoted.text)}")` : ` (re #${m.replyTo})`) : "";
  if (m.deleted) return `${hhmm(at)} [${roomLabel(m.room, me)}] ${m.from}${re}: (deleted)`;
  const edited = m.editedAt ? " (edited)" : "";
  const reactions = m.reactions.length ? `  [${m.reactions.map((r) => `${r.emoji} ${r.count}`).join(", ")}]` : "";
  return `${hhmm(at)} [${roomLabel(m.room, me)}] ${m.from}${re}: ${m.text}${edited}${reactions}`;
}

export function formatPresence(p: Presence, me: string): string {
  const joined = p.action === PresenceAction.JOINED;
  const where = dmPartner(p.room, me) !== undefined ? "your direct messages" : p.room;
  return `* ${p.user} ${joined ? "joined" : "left"} ${where}${p.region ? ` (${p.region})` : ""}`;
}

export async function chatCommand(
  args: string[],
  io: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream & { isTTY?: boolean }; env: NodeJS.ProcessEnv } = {
    input: process.stdin,
    output: process.stdout,
    env: process.env,
  },
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      user: { type: "string" },
      token: { type: "string" },
      room: { type: "string", default: "lobby" },
      protocol: { type: "string", default: "grpc" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`${USAGE}\n\n${HELP}`);
    return 0;
  }
  const token = values.token ?? (values.user ? undefined : io.env.EDGECHAT_TOKEN);
  if (!token && !values.user) {
    console.error(`edgechat chat: give --user <id> (a server in dev mode) or --token <JWT> (or set EDGECHAT_TOKEN)\n${USAGE}`);
    return 2;
  }
  const protocol = values.protocol as Protocol;
  if (!PROTOCOLS.includes(protocol)) {
    console.error(`edgechat chat: --protocol must be one of ${PROTOCOLS.join(", ")}`);
    return 2;
  }
  const url = values.url ?? io.env.EDGECHAT_URL ?? "http://localhost:8080";
  const headers = authHeaders({ user: values.user, token });

  const tty = Boolean(io.output.isTTY && (io.input as { isTTY?: boolean }).isTTY);
  const rl = readline.createInterface({ input: io.input, output: io.output, terminal: tty });
  const print = (line: string) => {
    if (tty) {
      readline.clearLine(io.output, 0);
      readline.cursorTo(io.output, 0);
      io.output.write(`${line}\n`);
      rl.prompt(true);
    } else {
      io.output.write(`${line}\n`);
    }
  };

  let target: Target | undefined;
  const typingShown = new Map<string, number>();
  const reading = new Reading((room, seq) => session.markRead(room, seq));
  const session = new ChatSession({
    url,
    protocol,
    headers,
    out: {
      message: (m) => {
        typingShown.delete(`${m.room}\0${m.from}`);
        print(formatMessage(m, session.user, m.replyTo > 0n ? reading.find(m.room, m.replyTo) : undefined));
        reading.remember(m);
        if (target?.room === m.room) reading.seen(m.room, m.seq);
      },
      presence: (p) => {
        if (p.user !== session.user) print(formatPresence(p, session.user));
      },
      typing: (room, user) => {
        // Once per person and room every few seconds: a notice comes every second while they type.
        const key = `${room}\0${user}`;
        const now = Date.now();
        if (now - (typingShown.get(key) ?? 0) < 4000) return;
        typingShown.set(key, now);
        print(`* ${user} is typing${dmPartner(room, session.user) === undefined ? ` in ${room}` : " to you"}`);
      },
      info: (text) => print(`* ${text}`),
      error: (text) => print(`! ${text}`),
    },
  });

  const setTarget = async (t: Target | undefined) => {
    target = t;
    // Talking in a room is reading it: up to its newest message shown (0 for an empty one: from
    // then on what comes is counted as unread while the user is elsewhere).
    if (t) await reading.seenNow(t.room, reading.newest(t.room) ?? session.rooms.get(t.room)?.lastSeq ?? 0n);
    rl.setPrompt(t ? `${t.kind === "dm" ? `@${t.user}` : t.room}> ` : "> ");
  };
  const started = session.ready.then(async () => {
    print(`* connected to ${url} as ${session.user} (${session.region}); /help lists the commands`);
    if (values.room && (await session.enter(values.room))) await setTarget({ kind: "room", room: values.room });
    if (tty) rl.prompt();
  });
  started.catch(() => {});

  // Typing notices while a person types (a terminal only); the server forwards one a second.
  let typingSentAt = 0;
  if (tty) {
    io.input.on("keypress", (_s: string, key: { name?: string } | undefined) => {
      // readline has taken the key by now: rl.line is what is typed so far. Commands are not typing.
      if (!target || key?.name === "return" || key?.name === "enter" || mayBeCommand(rl.line)) return;
      const now = Date.now();
      if (now - typingSentAt < 1000) return;
      typingSentAt = now;
      session.typing(target.room);
    });
  }

  const lines = new Channel<string>();
  // After the end of input, what was typed gets this long to reach a server that is not up yet.
  let inputEnded!: () => void;
  const giveUp = new Promise<void>((resolve) => (inputEnded = resolve)).then(() => Bun.sleep(10_000));
  rl.on("close", () => inputEnded());
  rl.on("line", (l) => {
    // On a terminal, a message replaces the line it was typed on: it comes back from the server formatted.
    if (tty && l.trim() !== "" && !l.trim().startsWith("/")) io.output.write("\x1b[1A\x1b[2K");
    lines.push(l);
  });
  rl.on("close", () => lines.end());
  rl.on("SIGINT", () => rl.close());
  void session.finished.then(() => lines.end());

  const commands = new ChatCommands(session, print, () => target, setTarget, reading);
  // 1 when anything typed was refused or failed, so that scripts can tell.
  let code = 0;
  for await (const raw of lines) {
    const line = raw.trim();
    if (line === "") {
      if (tty) rl.prompt();
      continue;
    }
    if (line === "/quit" || line === "/exit") break;
    try {
      if (!(await Promise.race([started.then(() => true), giveUp.then(() => false)]))) {
        print(`! could not reach ${url}: what was typed was not sent`);
        code = 1;
        break;
      }
      if (!(await commands.run(line))) code = 1;
    } catch (err) {
      if (session.fatal) break;
      code = 1;
      print(`! ${ConnectError.from(err).rawMessage}`);
    }
    if (tty) rl.prompt();
  }
  if (session.fatal || session.refused > 0) code = 1;
  rl.close();
  reading.stop();
  await session.close();
  if (code === 0 && session.pending.size > 0) {
    print(`! ${session.pending.size} message${session.pending.size === 1 ? " was" : "s were"} not acknowledged before the end`);
    code = 1;
  }
  return code;
}

/**
 * Whether a line being typed may still turn out to be a command (a slash command, or the old
 * client's `list` and `connect <id>`): typing notices wait until it cannot.
 */
export function mayBeCommand(partial: string): boolean {
  const line = partial.trimStart();
  return line === "" || line.startsWith("/") || "list".startsWith(line.trimEnd()) || /^c(o(n(n(e(c(t(\s+\S*)?)?)?)?)?)?)?\s*$/.test(line);
}

/** A duration as `edgechat token --ttl` reads it ("30m", "2h", "7d"), in ms; undefined when the word is none. */
function durationMs(word: string): number | undefined {
  try {
    return parseDuration(word) * 1000;
  } catch {
    return undefined;
  }
}

/** What each line does, once the session is up. Each resolves false when the line was refused. */
class ChatCommands {
  constructor(
    private readonly session: ChatSession,
    private readonly print: (line: string) => void,
    private readonly target: () => Target | undefined,
    private readonly setTarget: (t: Target | undefined) => Promise<void>,
    private readonly reading: Reading,
  ) {}

  private fail(text: string): false {
    this.print(`! ${text}`);
    return false;
  }

  async run(line: string): Promise<boolean> {
    const [word, ...rest] = line.split(/\s+/);
    const arg = rest.join(" ");
    switch (word) {
      case "/join":
        return this.join(arg);
      case "/leave":
        return this.leave(arg);
      case "/rooms":
        return this.rooms();
      case "/dm":
        return this.dm(arg);
      case "/list":
        return this.list();
      case "/history":
        return this.history(arg);
      case "/reply":
        return this.reply(rest);
      case "/edit":
        return this.edit(rest);
      case "/delete":
        return this.remove(rest);
      case "/react":
        return this.react(rest);
      case "/create":
        return this.create(rest);
      case "/members":
        return this.members();
      case "/invite":
      case "/kick":
      case "/unban":
      case "/unmute":
      case "/block":
      case "/unblock":
        return this.manage(word, rest);
      case "/role":
        return this.role(rest);
      case "/topic":
        return this.topic(arg);
      case "/ban":
      case "/mute":
        return this.moderate(word, rest);
      case "/help":
        this.print(HELP);
        return true;
      // The old client's commands.
      case "list":
        if (rest.length === 0) return this.list();
        break;
      case "connect":
        if (rest.length === 1) return this.dm(arg);
        break;
    }
    if (line.startsWith("/") && !line.startsWith("//")) return this.fail(`unknown command ${word}: /help lists the commands`);
    return this.say(line.startsWith("//") ? line.slice(1) : line);
  }

  /** Sends; a refusal comes later, as an error event, and counts in session.refused. */
  private say(text: string): boolean {
    const t = this.target();
    if (!t) return this.fail("you are not talking to anyone: /join <room> or /dm <user> first");
    this.session.send(t.kind === "dm" ? { toUser: t.user } : { room: t.room }, text);
    return true;
  }

  /** Talks in the room once the server took the join; where the user was talking until then. */
  private async join(room: string): Promise<boolean> {
    if (!room) return this.fail("usage: /join <room>");
    if (!(await this.session.enter(room))) return false;
    const partner = dmPartner(room, this.session.user);
    await this.setTarget(partner === undefined ? { kind: "room", room } : { kind: "dm", user: partner, room });
    return true;
  }

  private async leave(arg: string): Promise<boolean> {
    const room = arg || this.target()?.room;
    if (!room) return this.fail("usage: /leave <room>");
    if (!this.session.leave(room)) return this.fail(`you are not in ${room}`);
    this.print(`* left ${roomLabel(room, this.session.user)}`);
    if (this.target()?.room === room) {
      const next = [...this.session.rooms.keys()].find((r) => !isDmRoom(r));
      await this.setTarget(next ? { kind: "room", room: next } : undefined);
      if (next) this.print(`* talking in ${next} now`);
    }
    return true;
  }

  private async rooms(): Promise<boolean> {
    const rooms = await this.session.listRooms();
    if (rooms.length === 0) {
      this.print("* no rooms yet: a room exists once someone sends to it (/join <room>, then type)");
      return true;
    }
    const here = this.target()?.room;
    const labels = rooms.map((r) => roomLabel(r.name, this.session.user));
    const width = Math.max(...labels.map((l) => l.length));
    this.print(`* rooms (${rooms.length}):`);
    rooms.forEach((r, i) => {
      const mark = r.name === here ? "  (here)" : this.session.rooms.has(r.name) ? "  (joined)" : "";
      const unread =
        r.unread === 0 ? "" : `, ${r.unread >= UNREAD_CAP ? "99+" : r.unread} unread${r.unreadMentions ? ` (${r.unreadMentions} mentioning you)` : ""}`;
      this.print(`    ${labels[i].padEnd(width)}  ${r.members} members, ${r.online} online, last seq ${r.lastSeq}${unread}${mark}`);
    });
    return true;
  }

  private async dm(user: string): Promise<boolean> {
    if (!user || /\s/.test(user)) return this.fail("usage: /dm <user>");
    if (user === this.session.user) return this.fail("that is you: /dm another user");
    const room = dmRoom(this.session.user, user);
    if (!(await this.session.enter(room, false))) return false;
    await this.setTarget({ kind: "dm", user, room });
    this.print(`* talking to ${user} (direct messages)`);
    return true;
  }

  private async list(): Promise<boolean> {
    const users = await this.session.listOnline();
    const who = users.map((u) => `${u.user} (${u.region}${u.sessions > 1 ? `, ${u.sessions} sessions` : ""})`);
    this.print(`* online (${users.length}): ${who.join(", ")}`);
    return true;
  }

  /** The room being talked in, for the room commands; a DM has no owners. */
  private room(): string | undefined {
    const t = this.target();
    return t?.kind === "room" ? t.room : undefined;
  }

  private async create(args: string[]): Promise<boolean> {
    const [room, ...more] = args;
    if (!room) return this.fail("usage: /create <room> [private] [title]");
    const priv = more[0] === "private";
    const title = (priv ? more.slice(1) : more).join(" ");
    const { client, call } = this.session.client();
    await client.createRoom({ name: room, kind: priv ? RoomKind.PRIVATE : RoomKind.PUBLIC, title }, call);
    this.print(`* created ${priv ? "private " : ""}room ${room}: you are its owner`);
    return this.join(room);
  }

  private async members(): Promise<boolean> {
    const room = this.room();
    if (!room) return this.fail("/join a room first: /members lists a room's members");
    const { client, call } = this.session.client();
    const { members, banned } = await client.listMembers({ room }, call);
    const who = members.map((m) => `${m.user}${m.role ? ` (${Role[m.role].toLowerCase()})` : ""}${m.mutedUntil ? " [muted]" : ""}`);
    this.print(`* members of ${room} (${members.length}): ${who.join(", ")}`);
    if (banned.length > 0) this.print(`* banned: ${banned.map((b) => `${b.user}${b.reason ? ` (${b.reason})` : ""}`).join(", ")}`);
    return true;
  }

  /** The commands that take a user and nothing else. */
  private async manage(word: string, args: string[]): Promise<boolean> {
    const [user] = args;
    if (!user || args.length > 1) return this.fail(`usage: ${word} <user>`);
    const { client, call } = this.session.client();
    if (word === "/block" || word === "/unblock") {
      await (word === "/block" ? client.block({ user }, call) : client.unblock({ user }, call));
      this.print(word === "/block" ? `* blocked ${user}: no direct messages from them, no presence either way` : `* unblocked ${user}`);
      return true;
    }
    const room = this.room();
    if (!room) return this.fail(`/join a room first: ${word} works in the current room`);
    const req = { room, user };
    const done = { "/invite": `added ${user} to`, "/kick": `removed ${user} from`, "/unban": `lifted ${user}'s ban in`, "/unmute": `unmuted ${user} in` }[word];
    if (word === "/invite") await client.addMember(req, call);
    else if (word === "/kick") await client.removeMember(req, call);
    else if (word === "/unban") await client.unban(req, call);
    else await client.unmute(req, call);
    this.print(`* ${done} ${room}`);
    return true;
  }

  private async role(args: string[]): Promise<boolean> {
    const [user, name] = args;
    const role = { owner: Role.OWNER, admin: Role.ADMIN, member: Role.MEMBER }[name ?? ""];
    if (!user || role === undefined || args.length > 2) return this.fail("usage: /role <user> owner|admin|member");
    const room = this.room();
    if (!room) return this.fail("/join a room first: /role works in the current room");
    const { client, call } = this.session.client();
    await client.setRole({ room, user, role }, call);
    this.print(`* ${user} is ${name === "admin" ? "an" : "a"} ${name} of ${room} now`);
    return true;
  }

  private async topic(text: string): Promise<boolean> {
    const room = this.room();
    if (!room) return this.fail("/join a room first: /topic sets the current room's topic");
    const { client, call } = this.session.client();
    await client.updateRoom({ room, topic: text }, call);
    return true;
  }

  /** /ban and /mute: a user, an optional duration (for good without one), and for a ban a reason. */
  private async moderate(word: string, args: string[]): Promise<boolean> {
    const [user, maybe, ...more] = args;
    if (!user) return this.fail(`usage: ${word} <user> [30m|2h|7d]${word === "/ban" ? " [reason]" : ""}`);
    const ms = maybe === undefined ? undefined : durationMs(maybe);
    const reasonWords = ms === undefined ? [maybe, ...more].filter((w) => w !== undefined) : more;
    if (word === "/mute" && reasonWords.length > 0) return this.fail("usage: /mute <user> [30m|2h|7d]");
    const room = this.room();
    if (!room) return this.fail(`/join a room first: ${word} works in the current room`);
    const until = ms === undefined ? undefined : timestampFromMs(Date.now() + ms);
    const { client, call } = this.session.client();
    if (word === "/ban") await client.ban({ room, user, until, reason: reasonWords.join(" ") }, call);
    else await client.mute({ room, user, until }, call);
    return true;
  }

  /** /reply @user text: that user's newest message here; /reply 12 text: the message with seq 12. */
  private reply(args: string[]): boolean {
    const [which, ...words] = args;
    const t = this.target();
    if (!which || words.length === 0) return this.fail("usage: /reply <@user|seq> <text>");
    if (!t) return this.fail("/join a room or /dm a user first");
    let seq: bigint | undefined;
    if (which.startsWith("@")) {
      seq = this.reading.latestFrom(t.room, which.slice(1))?.seq;
      if (seq === undefined) return this.fail(`no message from ${which.slice(1)} here to answer`);
    } else if (/^\d+$/.test(which)) seq = BigInt(which);
    else return this.fail("usage: /reply <@user|seq> <text>");
    this.session.send(t.kind === "dm" ? { toUser: t.user } : { room: t.room }, words.join(" "), seq);
    return true;
  }

  /** The message a change names: `#seq`, `@user` (their newest here), or the default; with the words left. */
  private pick(args: string[], fallback: (room: string) => Message | undefined): { room: string; seq: bigint; m?: Message; rest: string[] } | string {
    const t = this.target();
    if (!t) return "/join a room or /dm a user first";
    const [which, ...after] = args;
    if (which && /^#\d+$/.test(which)) {
      const seq = BigInt(which.slice(1));
      return { room: t.room, seq, m: this.reading.find(t.room, seq), rest: after };
    }
    if (which?.startsWith("@")) {
      const m = this.reading.latestFrom(t.room, which.slice(1));
      return m ? { room: t.room, seq: m.seq, m, rest: after } : `no message from ${which.slice(1)} here`;
    }
    const m = fallback(t.room);
    return m ? { room: t.room, seq: m.seq, m, rest: args } : "no message here to change: name one with #seq";
  }

  private async edit(args: string[]): Promise<boolean> {
    const p = this.pick(args, (room) => this.reading.latestFrom(room, this.session.user));
    if (typeof p === "string") return this.fail(p);
    if (p.rest.length === 0) return this.fail("usage: /edit [#seq] <text>");
    const { client, call } = this.session.client();
    await client.editMessage({ room: p.room, seq: p.seq, text: p.rest.join(" "), clientMsgId: crypto.randomUUID() }, call);
    return true;
  }

  private async remove(args: string[]): Promise<boolean> {
    const p = this.pick(args, (room) => this.reading.latestFrom(room, this.session.user));
    if (typeof p === "string") return this.fail(p);
    if (p.rest.length > 0) return this.fail("usage: /delete [#seq]");
    const { client, call } = this.session.client();
    await client.deleteMessage({ room: p.room, seq: p.seq, clientMsgId: crypto.randomUUID() }, call);
    return true;
  }

  /** A reaction, or taken back when the user has it on the message already. */
  private async react(args: string[]): Promise<boolean> {
    const p = this.pick(args, (room) => this.reading.latest(room));
    if (typeof p === "string") return this.fail(p);
    const [emoji] = p.rest;
    if (!emoji || p.rest.length > 1) return this.fail("usage: /react [@user|#seq] <emoji>");
    const remove = !!p.m?.reactions.some((r) => r.emoji === emoji && r.users.includes(this.session.user));
    const { client, call } = this.session.client();
    await client.react({ room: p.room, seq: p.seq, emoji, remove, clientMsgId: crypto.randomUUID() }, call);
    return true;
  }

  private async history(arg: string): Promise<boolean> {
    const t = this.target();
    if (!t) return this.fail("/join a room or /dm a user first");
    const n = arg ? Number(arg) : 20;
    if (!Number.isInteger(n) || n < 1 || n > 500) return this.fail("usage: /history [n], n from 1 to 500");
    // Messages as they are now; the entries that changed them would only repeat it.
    const messages = (await this.session.history(t.room, n)).filter((m) => !m.update);
    this.print(`* last ${messages.length} message${messages.length === 1 ? "" : "s"} of ${roomLabel(t.room, this.session.user)}:`);
    for (const m of messages) this.print(`  ${formatMessage(m, this.session.user)}`);
    return true;
  }
}
