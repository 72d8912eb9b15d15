// Edits, deletes and reactions (issue 15) in the core on each engine: who may change what, the
// entries that record each change, idempotency, races, and resume across a burst of changes.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { type ChatEvent, ChatRequestSchema, type Message, RoomKind, UpdateKind } from "../gen/chat/v1/chat_pb.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { bothEngines } from "../../test/support/engines.ts";
import { eventually } from "../../test/support/wait.ts";
import type { Engine } from "../engine/engine.ts";
import { createLogger } from "../log.ts";
import { ChatCore } from "./chat.ts";
import { MAX_EMOJI_PER_MESSAGE, MAX_REACTIONS_PER_USER } from "../rules/reactions.ts";
import type { Session } from "./session.ts";
import { refusal } from "../../test/support/refusal.ts";

let engine: Engine;
let core: ChatCore;
const ann = { user: "ann" };
const ben = { user: "ben" };

/** The session's message events, as they arrive. */
function messages(s: Session): () => Message[] {
  const events: ChatEvent[] = [];
  const read = () => events.push(...s.take());
  s.attach({ readable: read });
  read();
  return () => events.flatMap((e) => (e.kind.case === "message" ? [e.kind.value] : []));
}

const all = async (room: string) => (await core.history("ann", room, 0n, 0n, 500)).messages;
const reactionsOf = (m: Message | undefined) => m?.reactions.map((r) => [r.emoji, r.count, r.users]);

for (const [name, factory] of await bothEngines()) {
  describe(`on the ${name} engine`, () => {
    beforeEach(async () => {
      engine = await factory();
      core = new ChatCore({ engine, region: "test", limits: TEST_LIMITS, log: createLogger("error") });
    });
    afterEach(async () => {
      await core.drain();
      await engine.close();
    });

    test("an edit keeps the seq, records when, and is an entry of its own that carries the message as it is now", async () => {
      const m = await core.send("ann", { room: "r" }, "helo", "");
      const { message, entry } = await core.editMessage(ann, "r", m.seq, "hello", "");
      expect(message).toMatchObject({ seq: 1n, text: "hello", version: 1n, id: m.id });
      expect(message.editedAt).toBeDefined();
      expect(entry).toMatchObject({ seq: 2n, from: "ann", text: "", update: { kind: UpdateKind.EDITED, targetSeq: 1n, version: 1n } });
      expect(entry?.update?.message?.text).toBe("hello");
      // The same text again changes nothing and records nothing.
      expect((await core.editMessage(ann, "r", 1n, "hello", "")).entry).toBeUndefined();
      const page = await all("r");
      expect(page.map((x) => [x.seq, x.text, x.version, x.update?.kind ?? 0])).toEqual([
        [1n, "hello", 1n, 0],
        [2n, "", 0n, UpdateKind.EDITED],
      ]);
      expect(page[1].update?.message).toMatchObject({ seq: 1n, text: "hello", version: 1n });
    });

    test("refusals change nothing: someone else's message, an unknown seq, an entry, an empty or oversized text, a room one cannot read", async () => {
      await core.send("ann", { room: "r" }, "mine", "");
      expect(await refusal(core.editMessage(ben, "r", 1n, "yours now", ""))).toBe('PermissionDenied: only its author may edit message 1 of room "r"');
      expect(await refusal(core.deleteMessage(ben, "r", 1n, ""))).toBe(
        'PermissionDenied: only its author or the room\'s owners and admins may delete message 1 of room "r"',
      );
      expect(await refusal(core.editMessage(ann, "r", 9n, "x", ""))).toBe('NotFound: room "r" has no message 9');
      expect(await refusal(core.editMessage(ann, "r", 0n, "x", ""))).toBe("InvalidArgument: seq must name a message: 1 or more");
      expect(await refusal(core.editMessage(ann, "r", 1n, "", ""))).toBe("InvalidArgument: text is empty: send 1 or more characters");
      expect(await refusal(core.editMessage(ann, "r", 1n, "x".repeat(4097), ""))).toBe("InvalidArgument: text is 4097 bytes; the limit is 4096 bytes of UTF-8");
      expect(await refusal(core.react(ann, "r", 1n, "not one", true, ""))).toStartWith("InvalidArgument: emoji must be 1 to 32 bytes");
      await core.react(ann, "r", 1n, "👍", true, "");
      expect(await refusal(core.editMessage(ann, "r", 2n, "x", ""))).toBe(
        'InvalidArgument: seq 2 of room "r" records a change, not a message: it cannot be changed',
      );
      await core.rooms.create({ user: "olga" }, "club", RoomKind.PRIVATE, "", "");
      await core.rooms.addMember({ user: "olga" }, "club", "ann");
      await core.send("ann", { room: "club" }, "inside", "");
      expect(await refusal(core.react(ben, "club", 2n, "👍", true, ""))).toBe('PermissionDenied: room "club" is private: an owner or admin must add you first');
      expect(await refusal(core.editMessage(ann, "dm:ben:cat", 1n, "x", ""))).toStartWith("PermissionDenied:");
      const page = await all("r");
      expect(page.map((x) => [x.seq, x.text, x.version])).toEqual([
        [1n, "mine", 1n],
        [2n, "", 0n],
      ]);
    });

    test("a delete leaves a tombstone at the seq, by the author or a room admin; what was deleted cannot be edited, reacted to or answered", async () => {
      await core.rooms.create({ user: "olga" }, "team", RoomKind.PUBLIC, "", "");
      await core.rooms.addMember({ user: "olga" }, "team", "adam");
      await core.rooms.setRole({ user: "olga" }, "team", "adam", 2);
      const a = await core.send("ann", { room: "team" }, "oops", "");
      const b = await core.send("ben", { room: "team" }, "spam", "");
      await core.react(ben, "team", a.seq, "👍", true, "");
      const own = await core.deleteMessage(ann, "team", a.seq, "");
      expect(own.message).toMatchObject({ seq: a.seq, text: "", deleted: true, reactions: [], from: "ann" });
      expect(own.entry?.update).toMatchObject({ kind: UpdateKind.DELETED, targetSeq: a.seq });
      const moderated = await core.deleteMessage({ user: "adam" }, "team", b.seq, "");
      expect(moderated.entry?.from).toBe("adam");
      expect((await core.deleteMessage(ann, "team", a.seq, "")).entry).toBeUndefined();
      expect(await refusal(core.editMessage(ann, "team", a.seq, "back", ""))).toBe(`FailedPrecondition: message ${a.seq} of room "team" was deleted`);
      expect(await refusal(core.react(ben, "team", a.seq, "👍", true, ""))).toBe(`FailedPrecondition: message ${a.seq} of room "team" was deleted`);
      expect(await refusal(core.send("ben", { room: "team" }, "re", "", "test", a.seq))).toBe(
        `InvalidArgument: reply_to ${a.seq} is not a message of room "team"`,
      );
      const page = await all("team");
      expect(page.filter((m) => m.deleted).map((m) => [m.seq, m.text])).toEqual([
        [a.seq, ""],
        [b.seq, ""],
      ]);
      // Every entry of the deleted message carries it as it is now: no text anywhere.
      for (const m of page) if (m.update?.targetSeq === a.seq) expect(m.update.message).toMatchObject({ deleted: true, text: "" });
    });

    test("reactions: counts and users per emoji, added once, taken back, bounded per user and per message", async () => {
      const m = await core.send("ann", { room: "r" }, "ship it?", "");
      await core.react(ben, "r", m.seq, "👍", true, "");
      await core.react(ann, "r", m.seq, "👍", true, "");
      const third = await core.react(ann, "r", m.seq, "🎉", true, "");
      expect(reactionsOf(third.message)).toEqual([
        ["👍", 2, ["ben", "ann"]],
        ["🎉", 1, ["ann"]],
      ]);
      expect((await core.react(ann, "r", m.seq, "👍", true, "")).entry).toBeUndefined();
      const back = await core.react(ann, "r", m.seq, "🎉", false, "");
      expect(back.entry?.update).toMatchObject({ kind: UpdateKind.REACTION_REMOVED, emoji: "🎉" });
      expect(reactionsOf(back.message)).toEqual([["👍", 2, ["ben", "ann"]]]);
      expect((await core.react(ann, "r", m.seq, "🎉", false, "")).entry).toBeUndefined();
      for (let i = 1; i < MAX_REACTIONS_PER_USER; i++) await core.react(ann, "r", m.seq, `:e${i}:`, true, "");
      expect(await refusal(core.react(ann, "r", m.seq, ":one-more:", true, ""))).toBe(
        `ResourceExhausted: you have ${MAX_REACTIONS_PER_USER} reactions on message 1 already: take one back first`,
      );
      for (let i = MAX_REACTIONS_PER_USER; i < MAX_EMOJI_PER_MESSAGE; i++) await core.react({ user: `f${i}` }, "r", m.seq, `:e${i}:`, true, "");
      expect(await refusal(core.react({ user: "cat" }, "r", m.seq, ":new:", true, ""))).toBe(
        `ResourceExhausted: message 1 has ${MAX_EMOJI_PER_MESSAGE} different reactions already: use one of them`,
      );
      const [now] = (await all("r")).filter((x) => x.seq === m.seq);
      expect(now.reactions).toHaveLength(MAX_EMOJI_PER_MESSAGE);
    });

    test("a retried change with the same client_msg_id changes nothing twice; the same key on another message is another request", async () => {
      await core.send("ann", { room: "r" }, "one", "");
      await core.send("ann", { room: "r" }, "two", "");
      const first = await core.editMessage(ann, "r", 1n, "uno", "k1");
      await core.editMessage(ann, "r", 1n, "eins", "k2");
      const retry = await core.editMessage(ann, "r", 1n, "uno", "k1");
      expect(retry.duplicate).toBe(true);
      expect(retry.entry?.seq).toBe(first.entry!.seq);
      expect(retry.message.text).toBe("eins");
      const added = await core.react(ben, "r", 2n, "👍", true, "r1");
      await core.react(ben, "r", 2n, "👍", false, "r2");
      // The add again, late: it was made and taken back, and stays taken back.
      const late = await core.react(ben, "r", 2n, "👍", true, "r1");
      expect([late.duplicate, late.entry?.seq, late.message.reactions]).toEqual([true, added.entry!.seq, []]);
      const other = await core.editMessage(ann, "r", 2n, "dos", "k1");
      expect([other.duplicate, other.message.text]).toEqual([false, "dos"]);
      const entries = (await all("r")).filter((m) => m.update);
      expect(entries.map((m) => [m.update!.kind, m.update!.targetSeq, m.clientMsgId])).toEqual([
        [UpdateKind.EDITED, 1n, "k1"],
        [UpdateKind.EDITED, 1n, "k2"],
        [UpdateKind.REACTION_ADDED, 2n, "r1"],
        [UpdateKind.REACTION_REMOVED, 2n, "r2"],
        [UpdateKind.EDITED, 2n, "k1"],
      ]);
    });

    test("races: an edit against a delete, a reaction added and taken back in flight, many users reacting at once", async () => {
      await core.send("ann", { room: "r" }, "racy", "");
      const [edited, deleted] = await Promise.allSettled([core.editMessage(ann, "r", 1n, "edited", ""), core.deleteMessage(ann, "r", 1n, "")]);
      expect(deleted.status).toBe("fulfilled");
      if (edited.status === "rejected") expect(ConnectError.from(edited.reason).code).toBe(Code.FailedPrecondition);
      const m = await core.send("ann", { room: "r" }, "react to me", "");
      await Promise.all([core.react(ben, "r", m.seq, "👍", true, ""), core.react(ben, "r", m.seq, "👍", false, "")]);
      const users = Array.from({ length: 12 }, (_, i) => ({ user: `u${i}` }));
      await Promise.all(users.map((u) => core.react(u, "r", m.seq, "🎉", true, "")));
      const page = await all("r");
      expect(page[0]).toMatchObject({ deleted: true, text: "" });
      const target = page.find((x) => x.seq === m.seq)!;
      expect(target.reactions.find((r) => r.emoji === "🎉")?.count).toBe(12);
      // The entries replay to the same state: ben's reaction is there exactly when its last entry added it.
      const bens = page.filter((x) => x.update?.targetSeq === m.seq && x.from === "ben");
      const benHas = target.reactions.some((r) => r.emoji === "👍" && r.users.includes("ben"));
      expect(benHas).toBe(bens.at(-1)?.update?.kind === UpdateKind.REACTION_ADDED);
      // Versions: one per change, each entry's its own.
      const versions = page.filter((x) => x.update?.targetSeq === m.seq).map((x) => Number(x.update!.version));
      expect(versions.sort((x, y) => x - y)).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      expect(target.version).toBe(BigInt(versions.length));
    });

    test("a stream gets each change live with the message attached; a resume across a burst of edits gets every entry once, in order", async () => {
      await core.send("ann", { room: "r" }, "v0", "");
      const live = await core.open("ben", "test");
      const seen = messages(live);
      await core.join(live, "r", 1n);
      const chat = await core.open("ann", "test");
      await core.join(chat, "r");
      await core.handle(chat, create(ChatRequestSchema, { kind: { case: "edit", value: { room: "r", seq: 1n, text: "v1", clientMsgId: "e1" } } }));
      await core.handle(chat, create(ChatRequestSchema, { kind: { case: "react", value: { room: "r", seq: 1n, emoji: "👀", clientMsgId: "e2" } } }));
      await eventually(() => seen().length === 2, 5000, "two live entries", 10);
      expect(seen().map((m) => [m.seq, m.update?.kind, m.update?.message?.text, m.update?.message?.reactions.length])).toEqual([
        [2n, UpdateKind.EDITED, "v1", 0],
        [3n, UpdateKind.REACTION_ADDED, "v1", 1],
      ]);
      for (let i = 2; i <= 30; i++) await core.editMessage(ann, "r", 1n, `v${i}`, "");
      const resumed = await core.open("cat", "test");
      const got = messages(resumed);
      await core.join(resumed, "r", 3n);
      await eventually(() => got().length === 29, 10000, "29 entries on resume", 10);
      expect(got().map((m) => Number(m.seq))).toEqual(Array.from({ length: 29 }, (_, i) => i + 4));
      expect(got().every((m) => m.update?.kind === UpdateKind.EDITED && m.update.message?.text === "v30")).toBe(true);
      await eventually(() => seen().length === 31, 5000, "the burst live", 10);
      expect(seen().at(-1)?.update?.message?.text).toBe("v30");
    });

    test("a server-wide admin's stream may delete anyone's message; a flood of reactions is refused at the send rate, and changes nothing", async () => {
      await core.send("ann", { room: "r" }, "rude", "");
      const admin = await core.open("root", "test", undefined, true);
      const acks: ChatEvent[] = [];
      admin.attach({ readable: () => acks.push(...admin.take()) });
      await core.handle(admin, create(ChatRequestSchema, { kind: { case: "delete", value: { room: "r", seq: 1n, clientMsgId: "d1" } } }));
      await eventually(() => acks.some((e) => e.kind.case === "ack"), 3000, "the admin's ack", 5);
      expect((await all("r"))[0]).toMatchObject({ deleted: true });
      const limited = new ChatCore({ engine, region: "test", limits: { ...TEST_LIMITS, ratePerSecond: 0.001, rateBurst: 3 }, log: createLogger("error") });
      try {
        const m = await limited.send("ben", { room: "r" }, "react to me", "");
        await limited.react(ben, "r", m.seq, "👍", true, "");
        await limited.react(ben, "r", m.seq, "🎉", true, "");
        expect(await refusal(limited.react(ben, "r", m.seq, "👀", true, ""))).toStartWith("ResourceExhausted:");
        expect((await all("r")).find((x) => x.seq === m.seq)?.reactions.map((r) => r.emoji)).toEqual(["👍", "🎉"]);
      } finally {
        await limited.drain();
      }
    });

    test("changes are not unread messages", async () => {
      await core.send("ben", { room: "r" }, "hi @ann", "");
      await core.markRead("ann", "r", 1n);
      await core.editMessage(ben, "r", 1n, "hi again @ann", "");
      await core.react(ben, "r", 1n, "👋", true, "");
      expect((await core.listRooms("ann")).rooms.find((r) => r.name === "r")).toMatchObject({ unread: 0, unreadMentions: 0 });
      await core.send("ben", { room: "r" }, "gone soon @ann", "");
      await core.deleteMessage(ben, "r", 4n, "");
      expect((await core.listRooms("ann")).rooms.find((r) => r.name === "r")).toMatchObject({ unread: 0, unreadMentions: 0 });
    });
  });
}
