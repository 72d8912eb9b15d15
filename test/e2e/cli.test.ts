// `edgechat chat` and `edgechat token`, driven like a person would on a terminal, but through
// stdin/stdout pipes, against real server processes: two users chat in a room and by DM, see who is
// online, and one of them stays in the conversation across a server restart without missing or
// repeating a message.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { FileSink, Subprocess } from "bun";
import { chatClient, openChat, transport } from "../support/clients.ts";
import { freePort } from "../support/prometheus.ts";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";
import { TEST_SECRET } from "../support/tokens.ts";
import { eventually } from "../support/wait.ts";

const servers: ServerProcess[] = [];
const clis: Cli[] = [];
afterAll(async () => {
  for (const c of clis) c.kill();
  for (const s of servers) await s.stop();
});

async function server(env: Record<string, string> = {}, dataDir?: string): Promise<ServerProcess> {
  const s = await startServer(env, dataDir);
  servers.push(s);
  return s;
}

/** One `edgechat` process with its stdin and stdout as pipes. */
class Cli {
  out = "";
  err = "";
  readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  readonly exited: Promise<number>;

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string> = {},
    /** Run it on a pseudo-terminal: util-linux `script` between the pipes and the command. */
    terminal = false,
  ) {
    const argv = [process.execPath, join(ROOT, "app/cli/main.ts"), ...args];
    const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    this.proc = Bun.spawn(terminal ? ["script", "-qfec", quoted, "/dev/null"] : argv, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const drain = async (stream: ReadableStream<Uint8Array>, into: "out" | "err") => {
      const dec = new TextDecoder();
      for await (const chunk of stream) this[into] += dec.decode(chunk, { stream: true });
    };
    const reading = Promise.all([drain(this.proc.stdout, "out"), drain(this.proc.stderr, "err")]);
    this.exited = reading.then(() => this.proc.exited);
    clis.push(this);
  }

  get lines(): string[] {
    return this.out.split("\n").filter((l) => l !== "");
  }

  /** How many lines of the output match. */
  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length;
  }

  /** Types a line. */
  say(line: string): void {
    this.type(`${line}\n`);
  }

  /** Types characters, without Enter. */
  type(chars: string): void {
    const stdin = this.proc.stdin as FileSink;
    stdin.write(chars);
    stdin.flush();
  }

  /** Waits until `n` lines match (by default 1); fails with the output so far. */
  async see(re: RegExp, n = 1, ms = 10_000): Promise<void> {
    try {
      await eventually(() => this.count(re) >= n, ms, `${re}`);
    } catch (err) {
      throw new Error(`${this.name} did not print ${re} (${n}x): ${(err as Error).message}\n--- stdout:\n${this.out}\n--- stderr:\n${this.err}`);
    }
  }

  /** Closes stdin (end of input, like Ctrl-D) and resolves with the exit code. */
  async eof(): Promise<number> {
    (this.proc.stdin as FileSink).end();
    return this.exited;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill();
  }
}

function chat(name: string, url: string, ...args: string[]): Cli {
  return new Cli(name, ["chat", "--url", url, ...args]);
}

const line = (room: string, from: string, text: string) => new RegExp(`^\\d\\d:\\d\\d \\[${room.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\] ${from}: ${text}$`);

describe("edgechat chat", () => {
  test("replies quote what they answer; /rooms shows what is unread and who mentions you; talking in a room reads it", async () => {
    const s = await server();
    const ann = chat("ann", s.url, "--user", "ann", "--room", "ops");
    await ann.see(/^\* joined ops$/);
    ann.say("/join lobby");
    await ann.see(/^\* joined lobby$/);
    // Messages in ops while ann talks in the lobby: unread for her.
    const grpc = chatClient(transport(s.url, "grpc"));
    for (const text of ["standup at ten", "@ann can you run it?"])
      await grpc.send({ target: { case: "room", value: "ops" }, text }, { headers: { "x-user": "bob" } });
    ann.say("/rooms");
    await ann.see(/^ {4}ops\s+\d+ members, 1 online, last seq 2, 2 unread \(1 mentioning you\)  \(joined\)$/);
    ann.say("/join ops");
    await ann.see(line("ops", "bob", "@ann can you run it\\?"));
    ann.say("/reply @bob sure, I will");
    await ann.see(line("ops", 'ann \\(re bob: "@ann can you run it\\?"\\)', "sure, I will"));
    ann.say("/rooms");
    await ann.see(/^ {4}ops\s+\d+ members, 1 online, last seq 3  \(here\)$/);
    // Others see the reply with the seq it answers.
    const page = await grpc.history({ room: "ops", afterSeq: 0n }, { headers: { "x-user": "bob" } });
    expect(page.messages.map((m) => [m.text, m.replyTo])).toEqual([
      ["standup at ten", 0n],
      ["@ann can you run it?", 0n],
      ["sure, I will", 2n],
    ]);
    ann.say("/reply @zed hi");
    await ann.see(/^! no message from zed here to answer$/);
    expect(await ann.eof()).toBe(1);
  }, 20_000);

  test("/edit, /react and /delete: each change shows as a line in the room, and /history shows messages as they are now", async () => {
    const s = await server();
    const ann = chat("ann", s.url, "--user", "ann", "--room", "fixes");
    await ann.see(/^\* joined fixes$/);
    ann.say("teh plan");
    await ann.see(line("fixes", "ann", "teh plan"));
    ann.say("/edit the plan");
    await ann.see(/^\d\d:\d\d \[fixes\] \* ann edited their message #1: the plan$/);
    await chatClient(transport(s.url, "grpc")).send({ target: { case: "room", value: "fixes" }, text: "looks good" }, { headers: { "x-user": "bob" } });
    await ann.see(line("fixes", "bob", "looks good"));
    ann.say("/react @bob 👍");
    await ann.see(/\* ann reacted 👍 to bob's message #3$/);
    ann.say("/react #3 👍");
    await ann.see(/\* ann took back 👍 on bob's message #3$/);
    ann.say("/react 🎉");
    await ann.see(/\* ann reacted 🎉 to bob's message #3$/);
    ann.say("/delete");
    await ann.see(/\* ann deleted their message #1$/);
    ann.say("/history 10");
    await ann.see(/^\* last 2 messages of fixes:$/);
    await ann.see(/^ {2}\d\d:\d\d \[fixes\] ann: \(deleted\)$/);
    await ann.see(/^ {2}\d\d:\d\d \[fixes\] bob: looks good {2}\[🎉 1\]$/);
    ann.say("/edit #3 mine now");
    await ann.see(/^! only its author may edit message 3 of room "fixes"$/);
    expect(await ann.eof()).toBe(1);
  }, 20_000);

  test("rooms with owners: /create, /invite, /members, /role, /topic, /mute, /ban, /kick and /block, with each change shown in the room", async () => {
    const s = await server();
    const olga = chat("olga", s.url, "--user", "olga", "--room", "lobby");
    await olga.see(/^\* joined lobby$/);
    olga.say("/create crew private The crew");
    await olga.see(/^\* created private room crew: you are its owner$/);
    await olga.see(/^\d\d:\d\d \[crew\] \* olga created this private room "The crew"$/);
    await olga.see(/^\* joined crew$/);
    const ben = chat("ben", s.url, "--user", "ben", "--room", "lobby");
    await ben.see(/^\* joined lobby$/);
    ben.say("/join crew");
    await ben.see(/^! cannot enter crew: room "crew" is private: an owner or admin must add you first$/);
    olga.say("/invite ben");
    await olga.see(/^\* added ben to crew$/);
    await olga.see(/\[crew\] \* olga added ben$/);
    ben.say("/join crew");
    await ben.see(/^\* joined crew$/);
    await ben.see(/\[crew\] \* olga added ben$/);
    ben.say("hello crew");
    await olga.see(line("crew", "ben", "hello crew"));
    olga.say("/role ben admin");
    await ben.see(/\[crew\] \* olga made ben an admin$/);
    olga.say("/topic launch day");
    await ben.see(/\[crew\] \* olga changed the room: title "The crew", topic "launch day", private$/);
    olga.say("/members");
    await olga.see(/^\* members of crew \(2\): ben \(admin\), olga \(owner\)$/);
    olga.say("/role ben member");
    olga.say("/mute ben 30m");
    await ben.see(/\[crew\] \* olga muted ben until \d{4}-.*Z$/);
    ben.say("can I talk?");
    await ben.see(/^! not sent "can I talk\?": permission_denied: you are muted in room "crew" until .*Z$/);
    olga.say("/ban ben 2h off topic");
    await ben.see(/^! permission_denied: you are banned from room "crew" until .*Z: off topic$/);
    await olga.see(/\[crew\] \* olga banned ben until .*Z: off topic$/);
    olga.say("/members");
    await olga.see(/^\* banned: ben \(off topic\)$/);
    olga.say("/unban ben");
    await olga.see(/^\* lifted ben's ban in crew$/);
    olga.say("/kick ben");
    await olga.see(/^! "ben" is not a member of room "crew"$/);
    // Blocking: ben's direct messages to olga are refused without saying why.
    olga.say("/block ben");
    await olga.see(/^\* blocked ben: no direct messages from them, no presence either way$/);
    ben.say("/dm olga");
    ben.say("sorry");
    await ben.see(/^! not sent "sorry": permission_denied: you cannot send direct messages to "olga"$/);
    expect(await ben.eof()).toBe(1);
    expect(await olga.eof()).toBe(1);
  }, 20_000);

  test("two users chat in a room and by DM, see each other online, and each message shows once", async () => {
    const s = await server();
    const alice = chat("alice", s.url, "--user", "alice", "--room", "lobby");
    await alice.see(/^\* connected to .* as alice \(local\)/);
    await alice.see(/^\* joined lobby$/);
    const bob = chat("bob", s.url, "--user", "bob", "--room", "lobby");
    await bob.see(/^\* joined lobby$/);
    await alice.see(/^\* bob joined lobby \(local\)$/);

    alice.say("hello bob");
    await bob.see(line("lobby", "alice", "hello bob"));
    await alice.see(line("lobby", "alice", "hello bob"));
    bob.say("hi alice");
    await alice.see(line("lobby", "bob", "hi alice"));

    // Direct messages, both ways: /dm and the old client's `connect <id>`.
    bob.say("/dm alice");
    await bob.see(/^\* talking to alice \(direct messages\)$/);
    bob.say("psst");
    await alice.see(line("@bob", "bob", "psst"));
    await bob.see(line("@alice", "bob", "psst"));
    alice.say("connect bob");
    alice.say("back at you");
    await bob.see(line("@alice", "alice", "back at you"));

    // Who is online: /list and the old `list`.
    bob.say("/list");
    await bob.see(/^\* online \(2\): alice \(local\), bob \(local\)$/);
    alice.say("list");
    await alice.see(/^\* online \(2\): alice \(local\), bob \(local\)$/);

    // The rooms, with the DM shown as @partner.
    alice.say("/rooms");
    // (Whether alice's read state has caught up with bob's last line depends on when she last
    // told the server, at most every 250 ms: the unread part is the other test's.)
    await alice.see(/^ {4}lobby\s+2 members, 2 online, last seq 2(, 1 unread)?  \(joined\)$/);
    await alice.see(/^ {4}@bob\s+2 members, 2 online, last seq 2  \(here\)$/);

    // Someone typing in the room (a plain client here) shows as a line.
    const dave = openChat(chatClient(transport(s.url, "grpc")), "dave");
    await dave.send({ kind: { case: "join", value: { room: "lobby" } } });
    await dave.reader.until((r) => r.of("joined").length === 1);
    await dave.send({ kind: { case: "typing", value: { room: "lobby" } } });
    await alice.see(/^\* dave is typing in lobby$/);
    dave.close();

    // A late joiner sees the room's last messages from history, then live ones, each once.
    const carol = chat("carol", s.url, "--user", "carol", "--room", "lobby");
    await carol.see(/^\* joined lobby$/);
    await carol.see(line("lobby", "bob", "hi alice"));
    alice.say("/join lobby"); // back from the DM to the room
    alice.say("welcome carol");
    await carol.see(line("lobby", "alice", "welcome carol"));
    carol.say("/history 2");
    await carol.see(/^\* last 2 messages of lobby:$/);
    await carol.see(/^ {2}\d\d:\d\d \[lobby\] alice: welcome carol$/);
    // The DM is not carol's to read.
    expect(carol.out).not.toContain("psst");

    expect(await alice.eof()).toBe(0);
    bob.say("/quit");
    expect(await bob.exited).toBe(0);
    expect(await carol.eof()).toBe(0);

    const messages = (c: Cli) => c.lines.filter((l) => /^\d\d:\d\d \[/.test(l));
    expect(messages(alice).map((l) => l.slice(6))).toEqual([
      "[lobby] alice: hello bob",
      "[lobby] bob: hi alice",
      "[@bob] bob: psst",
      "[@bob] alice: back at you",
      "[lobby] alice: welcome carol",
    ]);
    expect(messages(bob).map((l) => l.slice(6))).toEqual([
      "[lobby] alice: hello bob",
      "[lobby] bob: hi alice",
      "[@alice] bob: psst",
      "[@alice] alice: back at you",
      "[lobby] alice: welcome carol",
    ]);
    expect(messages(carol).map((l) => l.slice(6))).toEqual(["[lobby] alice: hello bob", "[lobby] bob: hi alice", "[lobby] alice: welcome carol"]);
  }, 30_000);

  test("reconnects after a server restart, resumes every room and shows each message exactly once", async () => {
    const port = await freePort();
    const first = await server({ PORT: String(port) });
    const alice = chat("alice", first.url, "--user", "alice", "--room", "ops");
    const bob = chat("bob", first.url, "--user", "bob", "--room", "ops");
    await alice.see(/^\* joined ops$/);
    await bob.see(/^\* joined ops$/);
    alice.say("/dm bob"); // a second room to resume: the DM
    alice.say("dm before");
    await bob.see(line("@alice", "alice", "dm before"));
    bob.say("m1");
    bob.say("m2");
    await alice.see(line("ops", "bob", "m2"));

    expect(await first.stop("SIGTERM")).toBe(0);
    await alice.see(/^\* connection lost \(server is shutting down/);
    await bob.see(/^\* connection lost \(server is shutting down/);
    // Typed while the server is down: kept, and sent once the connection is back.
    bob.say("typed while down");

    const second = await server({ PORT: String(port) }, first.dataDir);
    // Posted before the clients are back: they get it by resuming with since_seq.
    const c = chatClient(transport(second.url, "connect"));
    await c.send({ target: { case: "room", value: "ops" }, text: "while you were away" }, { headers: { "x-user": "erin" } });
    await c.send({ target: { case: "toUser", value: "alice" }, text: "dm while away" }, { headers: { "x-user": "bob" } });

    await alice.see(/^\* reconnected as alice \(local\)$/, 1, 15_000);
    await bob.see(/^\* reconnected as bob \(local\)$/, 1, 15_000);
    await alice.see(line("ops", "erin", "while you were away"));
    await alice.see(line("@bob", "bob", "dm while away"));
    await alice.see(line("ops", "bob", "typed while down"));
    bob.say("after restart");
    await alice.see(line("ops", "bob", "after restart"));
    alice.say("/quit");
    expect(await alice.exited).toBe(0);
    expect(await bob.eof()).toBe(0);

    const messages = alice.lines.filter((l) => /^\d\d:\d\d \[/.test(l)).map((l) => l.slice(6));
    // The order across rooms depends on timing; within a room it is the room's order.
    expect(messages.filter((m) => m.startsWith("[ops]"))).toEqual([
      "[ops] bob: m1",
      "[ops] bob: m2",
      "[ops] erin: while you were away",
      "[ops] bob: typed while down",
      "[ops] bob: after restart",
    ]);
    expect(messages.filter((m) => m.startsWith("[@bob]"))).toEqual(["[@bob] alice: dm before", "[@bob] bob: dm while away"]);
    // Stored once: the resend after the reconnect reused its client_msg_id.
    const history = await c.history({ room: "ops" }, { headers: { "x-user": "erin" } });
    expect(history.messages.map((m) => m.text)).toEqual(["m1", "m2", "while you were away", "typed while down", "after restart"]);
  }, 40_000);

  test.skipIf(!Bun.which("script"))(
    "on a terminal: a prompt, and typing notices while the user types",
    async () => {
      const s = await server();
      const bob = chat("bob", s.url, "--user", "bob", "--room", "tty");
      await bob.see(/^\* joined tty$/);
      const alice = new Cli("alice", ["chat", "--url", s.url, "--user", "alice", "--room", "tty"], {}, true);
      await eventually(() => alice.out.includes("* joined tty") && alice.out.includes("tty> "), 10_000, "alice's prompt");
      await bob.see(/^\* alice joined tty \(local\)$/);
      alice.type("h");
      await bob.see(/^\* alice is typing in tty$/);
      alice.type("i there\r");
      await bob.see(line("tty", "alice", "hi there"));
      await eventually(() => /\d\d:\d\d \[tty\] alice: hi there/.test(alice.out), 10_000, "alice's own message");
      alice.type("/quit\r");
      expect(await alice.exited).toBe(0);
      expect(await bob.eof()).toBe(0);
      // Typing a command is not typing a message.
      expect(bob.count(/is typing/)).toBe(1);
    },
    20_000,
  );

  test("refuses to start without a user, and exits 1 when the server refuses the token", async () => {
    const noUser = new Cli("nobody", ["chat", "--url", "http://127.0.0.1:1"]);
    expect(await noUser.eof()).toBe(2);
    expect(noUser.err).toContain("give --user <id>");

    const s = await server({ EDGECHAT_JWT_SECRET: TEST_SECRET });
    const bad = chat("mallory", s.url, "--token", "not-a-token");
    expect(await bad.exited).toBe(1);
    expect(bad.out).toContain("! the server refused the session: token is malformed");
  }, 20_000);
});

describe("edgechat chat: what is refused", () => {
  test("a refused join keeps the user where they were, refused lines make the exit code 1, a token that is not a header value stops at once", async () => {
    const s = await server();
    const alice = chat("alice", s.url, "--user", "alice", "--room", "lobby");
    await alice.see(/^\* joined lobby$/);
    alice.say("/join bad room!");
    await alice.see(/^! cannot enter bad room!: .*room/);
    alice.say("still in the lobby");
    await alice.see(line("lobby", "alice", "still in the lobby"));
    expect(await alice.eof()).toBe(1);
    expect(alice.out).not.toContain("joined bad room!");

    // A script whose line is too long to send: told so, and exit code 1.
    const bob = chat("bob", s.url, "--user", "bob", "--room", "lobby");
    bob.say("x".repeat(5000));
    await bob.see(/^! not sent "x+": invalid_argument: /);
    expect(await bob.eof()).toBe(1);
    // Every line sent: 0.
    const carol = chat("carol", s.url, "--user", "carol", "--room", "lobby");
    carol.say("fine");
    await carol.see(line("lobby", "carol", "fine"));
    expect(await carol.eof()).toBe(0);

    // What `TOKEN=$(npm run edgechat -- token ...)` captures without -s: npm's banner, then the token.
    const banner = "\n> edgechat@0.1.0 edgechat\n> bun app/cli/main.ts token --user dave\n\neyJhbGciOiJIUzI1NiJ9.e30.sig";
    const dave = new Cli("dave", ["chat", "--url", s.url, "--token", banner]);
    expect(await dave.exited).toBe(1);
    expect(dave.err).toContain("the token has a line break in it");
    expect(dave.err).toContain("npm run -s");
    expect(dave.out).not.toContain("reconnecting");
  }, 30_000);
});

describe("edgechat token", () => {
  test("mints a token the server accepts, for chat and any client", async () => {
    const s = await server({ EDGECHAT_JWT_SECRET: TEST_SECRET });
    const tok = new Cli("token", ["token", "--user", "alice", "--ttl", "10m"], { EDGECHAT_JWT_SECRET: TEST_SECRET });
    expect(await tok.eof()).toBe(0);
    const token = tok.out.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const [header, payload] = token
      .split(".")
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
    expect(header.alg).toBe("HS256");
    expect(payload.sub).toBe("alice");
    expect(payload.exp - payload.iat).toBe(600);

    // A plain client with the token: the server takes the user from it.
    const sent = await chatClient(transport(s.url, "connect")).send(
      { target: { case: "room", value: "signed" }, text: "with a minted token" },
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(sent.message?.from).toBe("alice");

    // The chat client with the token, from EDGECHAT_TOKEN.
    const alice = new Cli("alice", ["chat", "--url", s.url, "--room", "signed"], { EDGECHAT_TOKEN: token });
    await alice.see(/^\* connected to .* as alice \(local\)/);
    await alice.see(line("signed", "alice", "with a minted token"));
    expect(await alice.eof()).toBe(0);
  }, 20_000);

  test("says what is missing: the secret, the user", async () => {
    const noSecret = new Cli("token", ["token", "--user", "alice"]);
    expect(await noSecret.eof()).toBe(1);
    expect(noSecret.err).toContain("EDGECHAT_JWT_SECRET is not set");
    expect(noSecret.out).toBe("");
    const noUser = new Cli("token", ["token"], { EDGECHAT_JWT_SECRET: TEST_SECRET });
    expect(await noUser.eof()).toBe(2);
    expect(noUser.err).toContain("--user is required");
    const badTtl = new Cli("token", ["token", "--user", "alice", "--ttl", "soon"], { EDGECHAT_JWT_SECRET: TEST_SECRET });
    expect(await badTtl.eof()).toBe(1);
    expect(badTtl.err).toContain('cannot read the duration "soon"');
  }, 20_000);
});
