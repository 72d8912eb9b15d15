// Runs README.md's `buf curl` and `curl` examples exactly as written, one after the other, against a
// fresh server: only "localhost:8080" is replaced by the test server's address. If an example in
// the README breaks, or stops matching what the server does, this test fails.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startServer, type ServerProcess } from "../support/server.ts";
import { eventually } from "../support/wait.ts";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const PATH = `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`;
const TIMEOUT_MS = 60_000;

// ---- Reading the README -------------------------------------------------------------------------

/** The body of the `## title` section, up to the next `## ` heading. */
function section(title: string): string {
  const start = README.search(new RegExp(`^## ${title}\\s*$`, "m"));
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`);
  const rest = README.slice(start + 3);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The commands of the ```sh blocks, with lines ending in `|` or `\` joined to the next. */
function shellCommands(markdown: string): string[] {
  const out: string[] = [];
  for (const [, body] of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    let pending = "";
    for (const raw of body.split("\n")) {
      const line = pending ? pending + " " + raw.trim() : raw.trim();
      if (/(\||\\)$/.test(line)) {
        pending = line.replace(/\\$/, "").trimEnd();
        continue;
      }
      pending = "";
      if (line && !line.startsWith("#")) out.push(line);
    }
  }
  return out;
}

/** The examples to run: commands that call `npx buf curl` or `curl`, directly or after a pipe. */
const isExample = (cmd: string) => /(^|\|\s*)(npx buf curl|curl)\s/.test(cmd);

// ---- Reading a command --------------------------------------------------------------------------

const header = (cmd: string, name: string) => new RegExp(`-H '${name}: ([^']+)'`).exec(cmd)?.[1];
const method = (cmd: string) => /\/([A-Za-z0-9_.]+\/[A-Za-z0-9_]+)(\s|$)/.exec(cmd)?.[1] ?? "";

/** The request body: `--data '...'`/`-d '...'`, or each JSON string given to printf before a pipe. */
function requests(cmd: string): any[] {
  const inline = /(?:--data|-d) '([^']*)'/.exec(cmd);
  if (inline) return [JSON.parse(inline[1])];
  const printf = /^printf (.*?)\|/.exec(cmd);
  if (!printf) return [{}];
  const args = [...printf[1].matchAll(/'([^']*)'/g)].map((m) => m[1]);
  return args.flatMap((arg) => {
    const envelope = /^((?:\\[0-7]{1,3})+)(\{.*\})$/.exec(arg);
    if (envelope) {
      // A Connect frame written as octal escapes: check the length it declares, then the JSON.
      const bytes = [...envelope[1].matchAll(/\\([0-7]{1,3})/g)].map((m) => parseInt(m[1], 8));
      expect(bytes.length).toBe(5);
      const declared = bytes.slice(1).reduce((n, b) => n * 256 + b, 0);
      expect(declared).toBe(Buffer.byteLength(envelope[2]));
      return [JSON.parse(envelope[2])];
    }
    return arg.startsWith("{") ? [JSON.parse(arg)] : [];
  });
}

/** Concatenated JSON values (buf curl prints one pretty-printed object per message). */
function jsonValues(text: string): any[] {
  const values: any[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (depth++ === 0) start = i;
    } else if (c === "}" || c === "]") {
      if (--depth === 0) values.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return values;
}

/** Connect streaming frames: 1 flag byte, a 4-byte big-endian length, then JSON. */
function connectFrames(bytes: Buffer): { flags: number; json: any }[] {
  const frames: { flags: number; json: any }[] = [];
  let at = 0;
  while (at + 5 <= bytes.length) {
    const len = bytes.readUInt32BE(at + 1);
    if (at + 5 + len > bytes.length) break;
    frames.push({ flags: bytes[at], json: JSON.parse(bytes.subarray(at + 5, at + 5 + len).toString("utf8")) });
    at += 5 + len;
  }
  return frames;
}

// ---- Running a command --------------------------------------------------------------------------

let server: ServerProcess;

function localize(cmd: string, port: number): string {
  expect(cmd).toContain("localhost:8080");
  return cmd.replaceAll("localhost:8080", `127.0.0.1:${port}`);
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(script: string, env: Record<string, string> = {}): Promise<Ran> {
  const proc = Bun.spawn(["sh", "-c", script], {
    cwd: ROOT,
    env: { ...process.env, PATH, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function expectOk(r: Ran, cmd: string): void {
  if (r.code !== 0) throw new Error(`exit code ${r.code} from\n  ${cmd}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** A command that streams until stopped, in its own process group so that stopping reaches curl. */
class Background {
  readonly proc: ChildProcess;
  private out = Buffer.alloc(0);
  stderr = "";
  exited: number | null = null;

  constructor(script: string) {
    this.proc = spawn("sh", ["-c", script], { cwd: ROOT, env: { ...process.env, PATH }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout!.on("data", (b: Buffer) => (this.out = Buffer.concat([this.out, b])));
    this.proc.stderr!.on("data", (b: Buffer) => (this.stderr += b.toString()));
    this.proc.on("exit", (code) => (this.exited = code ?? -1));
  }

  get stdout(): Buffer {
    return this.out;
  }

  async stop(): Promise<void> {
    if (this.exited === null && this.proc.pid) {
      const closed = new Promise((resolve) => this.proc.once("close", resolve));
      process.kill(-this.proc.pid, "SIGTERM");
      await closed;
    }
  }
}

const running: Background[] = [];

// ---- What the examples should do ----------------------------------------------------------------

/** Every message the examples posted so far, per room, in the order the server took them. */
const posted = new Map<string, { from: string; text: string }[]>();
const dm = (a: string, b: string) => (a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`);
function post(room: string, from: string, text: string): number {
  const list = posted.get(room) ?? [];
  list.push({ from, text });
  posted.set(room, list);
  return list.length;
}

/** The last Send example run, which the README tells the reader to run again during Subscribe. */
let lastSend: string | undefined;

async function checkSend(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const [req] = requests(cmd);
  const user = header(cmd, "x-user")!;
  const room = req.room ?? dm(user, req.toUser);
  const seq = post(room, user, req.text);
  const [res] = jsonValues(r.stdout);
  if (res.code) {
    // The README's one refused Send: a private room's outsider, as the JSON shown under it says.
    posted.get(room)?.pop();
    expect(res).toEqual({ code: "permission_denied", message: `room "${room}" is private: an owner or admin must add you first` });
    return;
  }
  expect(res.message).toMatchObject({ room, from: user, text: req.text, seq: String(seq), region: "local" });
  expect(res.message.id).toBeString();
  expect(res.message.sentAt).toBeString();
  lastSend = cmd;
}

async function checkHistory(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const [req] = requests(cmd);
  const [res] = jsonValues(r.stdout);
  const expected = posted.get(req.room) ?? [];
  expect(expected.length).toBeGreaterThan(0);
  expect(res.messages.map((m: any) => [m.seq, m.from, m.text])).toEqual(expected.map((m, i) => [String(i + 1), m.from, m.text]));
}

async function checkListMethods(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const methods = r.stdout.trim().split("\n");
  for (const m of ["Chat", "Send", "Subscribe", "History", "ListRooms", "ListOnline"]) expect(methods).toContain(`chat.v1.ChatService/${m}`);
  expect(methods).toContain("chat.ChatService/ChatStream");
  expect(methods).toContain("grpc.health.v1.Health/Check");
}

async function checkChat(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const user = header(cmd, "x-user")!;
  const events = jsonValues(r.stdout);
  const of = (kind: string) => events.filter((e) => kind in e).map((e) => e[kind]);
  expect(of("error")).toEqual([]);
  expect(of("ready")[0]?.user).toBe(user);
  for (const req of requests(cmd)) {
    if (req.join) expect(of("joined").map((j) => j.room)).toContain(req.join.room);
    if (req.ping) expect(of("pong")).toContainEqual({ nonce: req.ping.nonce });
    if (req.send) {
      const room = req.send.room;
      const seq = post(room, user, req.send.text);
      const ack = of("ack").find((a) => a.clientMsgId === req.send.clientMsgId);
      expect(ack?.message).toMatchObject({ room, from: user, text: req.send.text, seq: String(seq), clientMsgId: req.send.clientMsgId });
    }
  }
}

async function checkSubscribe(cmd: string, script: string): Promise<void> {
  const [req] = requests(cmd);
  const user = header(cmd, "x-user")!;
  const stream = new Background(script);
  running.push(stream);
  const events = () => {
    const frames = connectFrames(stream.stdout);
    const end = frames.find((f) => f.flags & 2);
    if (end) throw new Error(`the stream ended: ${JSON.stringify(end.json)}`);
    return frames.map((f) => f.json);
  };
  const messages = (room: string) => events().flatMap((e) => (e.message?.room === room ? [e.message] : []));
  const ended = () => {
    if (stream.exited !== null) throw new Error(`exited with ${stream.exited}: ${stream.stdout.toString()} ${stream.stderr}`);
  };

  // Everything after since_seq, from history.
  for (const room of req.rooms as string[]) {
    const since = Number(req.sinceSeq?.[room] ?? NaN);
    const expected = Number.isNaN(since) ? [] : (posted.get(room) ?? []).slice(since);
    await eventually(() => (ended(), messages(room).length >= expected.length && events().some((e) => e.joined?.room === room)), 10_000, `history of ${room}`);
    expect(messages(room).map((m) => [m.from, m.text])).toEqual(expected.map((m) => [m.from, m.text]));
  }
  expect(events()[0].ready?.user).toBe(user);

  // Then live: "run the curl ... /Send above again in another terminal".
  expect(lastSend).toBeDefined();
  const room = requests(lastSend!)[0].room;
  expect(req.rooms).toContain(room);
  const before = messages(room).length;
  await checkSend(lastSend!, await run(localize(lastSend!, server.port)));
  await eventually(() => (ended(), messages(room).length === before + 1), 10_000, "the live message");
  const seqs = messages(room).map((m) => Number(m.seq));
  const first = Number(req.sinceSeq?.[room] ?? 0) + 1;
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => first + i));
  await stream.stop();
}

async function checkChatStream(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const lines = requests(cmd);
  const user = lines[0].user;
  const replies = jsonValues(r.stdout);
  expect(replies.length).toBeGreaterThan(0);
  for (const reply of replies) expect(reply).toMatchObject({ user: "Server", targetId: user });
  let partner = "";
  for (const line of lines) {
    const connect = /^connect\s+(\S+)$/.exec(line.message.trim());
    if (connect) {
      partner = connect[1];
      expect(replies.some((x) => String(x.message).startsWith(`Connected to ${partner}`))).toBe(true);
    } else if (line.message !== "list" && partner) {
      post(dm(user, partner), user, line.message);
    }
  }
}

/** The room RPCs of "A private room, made and moderated": each change is also a history entry. */
async function checkRooms(cmd: string, r: Ran): Promise<void> {
  expectOk(r, cmd);
  const [req] = requests(cmd);
  const user = header(cmd, "x-user")!;
  const [res] = jsonValues(r.stdout);
  expect(res.code).toBeUndefined();
  const name = method(cmd).split("/")[1];
  if (name === "ListMembers") {
    expect(res).toEqual({
      members: [
        { user: "alice", role: "ROLE_OWNER" },
        { user: "bob", mutedUntil: "2030-01-01T00:00:00Z" },
      ],
      banned: [{ user: "bob", reason: "posted spam", by: "alice" }],
    });
    return;
  }
  const room = req.name ?? req.room;
  const seq = post(room, user, "");
  const kind = { CreateRoom: "CREATED", AddMember: "MEMBER_ADDED", Mute: "MUTED", Ban: "BANNED" }[name];
  expect(kind).toBeDefined();
  expect(res.entry).toMatchObject({ room, seq: String(seq), from: user, change: { kind: `ROOM_CHANGE_KIND_${kind}` } });
  if (name === "CreateRoom") expect(res.room).toMatchObject({ name: room, kind: req.kind, title: req.title, createdBy: user, yourRole: "ROLE_OWNER" });
}

// ---- The tests ----------------------------------------------------------------------------------

function check(cmd: string): (r: Ran) => Promise<void> {
  if (/--list-methods/.test(cmd)) return (r) => checkListMethods(cmd, r);
  switch (method(cmd)) {
    case "chat.v1.ChatService/Send":
      return (r) => checkSend(cmd, r);
    case "chat.v1.ChatService/History":
      return (r) => checkHistory(cmd, r);
    case "chat.v1.ChatService/Chat":
      return (r) => checkChat(cmd, r);
    case "chat.ChatService/ChatStream":
      return (r) => checkChatStream(cmd, r);
    case "chat.v1.ChatService/CreateRoom":
    case "chat.v1.ChatService/AddMember":
    case "chat.v1.ChatService/Mute":
    case "chat.v1.ChatService/Ban":
    case "chat.v1.ChatService/ListMembers":
      return (r) => checkRooms(cmd, r);
  }
  throw new Error(`no check for this README example; add one to test/e2e/readme.test.ts:\n  ${cmd}`);
}

const tryIt = shellCommands(section("Try it")).filter(isExample);

describe("README: Try it", () => {
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    for (const s of running) await s.stop();
    await server?.stop();
  });

  test("the section has the examples this test expects", () => {
    const kinds = tryIt.map((cmd) => (/--list-methods/.test(cmd) ? "list" : `${cmd.includes("buf curl") ? "buf" : "curl"} ${method(cmd)}`));
    for (const kind of [
      "list",
      "buf chat.v1.ChatService/Send",
      "buf chat.v1.ChatService/History",
      "buf chat.v1.ChatService/Chat",
      "curl chat.v1.ChatService/Send",
      "curl chat.v1.ChatService/Subscribe",
      "buf chat.ChatService/ChatStream",
      "curl chat.v1.ChatService/CreateRoom",
      "curl chat.v1.ChatService/Ban",
    ]) {
      expect(kinds).toContain(kind);
    }
  });

  for (const cmd of tryIt) {
    test(
      cmd.length > 110 ? cmd.slice(0, 107) + "..." : cmd,
      async () => {
        const script = localize(cmd, server.port);
        if (method(cmd) === "chat.v1.ChatService/Subscribe") return checkSubscribe(cmd, script);
        const verify = check(cmd);
        await verify(await run(script));
      },
      TIMEOUT_MS,
    );
  }
});

describe("README: Authentication", () => {
  const auth = section("Authentication");
  const commands = shellCommands(auth);
  const secret = /^EDGECHAT_JWT_SECRET=(\S+) npm start$/m.exec(auth)?.[1];
  let jwtServer: ServerProcess;

  beforeAll(async () => {
    expect(secret).toBeDefined();
    jwtServer = await startServer({ EDGECHAT_JWT_SECRET: secret! });
  });
  afterAll(async () => {
    await jwtServer?.stop();
  });

  test(
    "the token minted as shown is accepted, and the user is its subject",
    async () => {
      const mint = commands.find((c) => c.startsWith("TOKEN="));
      const call = commands.find((c) => c.startsWith("curl") && c.includes("$TOKEN"));
      expect(mint).toBeDefined();
      expect(call).toBeDefined();
      const sub = /--user (\S+)/.exec(mint!)?.[1];
      expect(mint).toContain(`EDGECHAT_JWT_SECRET=${secret} `);
      const r = await run(`${mint}\n${localize(call!, jwtServer.port)}`);
      expectOk(r, call!);
      const [req] = requests(call!);
      const [res] = jsonValues(r.stdout);
      expect(res.message).toMatchObject({ room: req.room, from: sub, text: req.text, seq: "1" });
    },
    TIMEOUT_MS,
  );
});
