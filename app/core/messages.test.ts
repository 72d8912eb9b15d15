// Messages that live (issue 15), in the core on each engine: replies, read state shared by a
// user's sessions, unread counts and mentions in ListRooms.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { type ChatEvent, ChatRequestSchema, RoomKind } from "../gen/chat/v1/chat_pb.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { bothEngines } from "../../test/support/engines.ts";
import { eventually } from "../../test/support/wait.ts";
import type { Engine } from "../engine/engine.ts";
import { createLogger } from "../log.ts";
import { ChatCore } from "./chat.ts";
import { UNREAD_CAP } from "../rules/unread.ts";
import type { Session } from "./session.ts";
import { refusal } from "../../test/support/refusal.ts";

let engine: Engine;
let core: ChatCore;

function reads(s: Session) {
  const events: ChatEvent[] = [];
  const read = () => events.push(...s.take());
  s.attach({ readable: read });
  read();
  return () => events.flatMap((e) => (e.kind.case === "read" ? [[e.kind.value.room, e.kind.value.lastReadSeq]] : []));
}

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

    test("a reply names a message of its room; a reply_to that is none is refused and stores nothing", async () => {
      const q = await core.send("ann", { room: "r" }, "lunch?", "");
      const a = await core.send("ben", { room: "r" }, "yes", "", "test", q.seq);
      expect(a.replyTo).toBe(q.seq);
      expect(await refusal(core.send("ben", { room: "r" }, "to nothing", "", "test", 99n))).toBe('InvalidArgument: reply_to 99 is not a message of room "r"');
      await core.rooms.create({ user: "olga" }, "made", RoomKind.PUBLIC, "", "");
      // Seq 1 of a created room is its creation: a change, not a message to answer.
      expect(await refusal(core.send("ben", { room: "made" }, "to a change", "", "test", 1n))).toBe(
        'InvalidArgument: reply_to 1 is not a message of room "made"',
      );
      const page = await core.history("ann", "r", 0n, 0n, 10);
      expect(page.messages.map((m) => [m.text, m.replyTo])).toEqual([
        ["lunch?", 0n],
        ["yes", 1n],
      ]);
    });

    test("read state: only forward, told to every session of the user and nobody else's; a seq past the newest is refused", async () => {
      for (let i = 1; i <= 5; i++) await core.send("ben", { room: "r" }, `m${i}`, "");
      const [phone, laptop, other] = await Promise.all([core.open("ann", "test"), core.open("ann", "test"), core.open("ben", "test")]);
      const [phoneReads, laptopReads, otherReads] = [reads(phone), reads(laptop), reads(other)];
      expect(await core.markRead("ann", "r", 3n)).toBe(3n);
      expect(await core.markRead("ann", "r", 2n)).toBe(3n);
      await core.handle(laptop, create(ChatRequestSchema, { kind: { case: "read", value: { room: "r", seq: 5n } } }));
      await eventually(() => phoneReads().length === 3 && laptopReads().length === 3, 3000, "read events", 5);
      expect(phoneReads()).toEqual([
        ["r", 3n],
        ["r", 3n],
        ["r", 5n],
      ]);
      expect(otherReads()).toEqual([]);
      expect(await refusal(core.markRead("ann", "r", 6n))).toBe('InvalidArgument: seq 6 is past the newest message of room "r" (5)');
      expect(await refusal(core.markRead("ann", "dm:ben:cat", 1n))).toStartWith("PermissionDenied:");
    });

    test("ListRooms: unread messages and mentions for the caller after their read state; own messages and changes do not count; capped", async () => {
      await core.rooms.create({ user: "ann" }, "team", RoomKind.PUBLIC, "", "");
      await core.send("ann", { room: "team" }, "hello all", "");
      await core.send("ben", { room: "team" }, "hi @ann", "");
      await core.send("ben", { room: "team" }, "and @anna is not ann", "");
      await core.send("cat", { room: "team" }, "thanks @ann.", "");
      await core.rooms.addMember({ user: "ann" }, "team", "dan");
      const team = async () => (await core.listRooms("ann")).rooms.find((r) => r.name === "team")!;
      // Never opened (no read state): not counted.
      expect(await team()).toMatchObject({ lastReadSeq: 0n, unread: 0, unreadMentions: 0 });
      // Opened before anything was in it: everything since counts.
      await core.markRead("ann", "team", 0n);
      expect(await team()).toMatchObject({ lastReadSeq: 0n, unread: 3, unreadMentions: 2 });
      await core.markRead("ann", "team", 3n);
      expect(await team()).toMatchObject({ lastReadSeq: 3n, unread: 2, unreadMentions: 1 });
      await core.markRead("ann", "team", 6n);
      expect(await team()).toMatchObject({ unread: 0, unreadMentions: 0 });
      await core.send("ben", { room: "busy" }, "first", "");
      await core.markRead("ann", "busy", 1n);
      for (let i = 0; i < UNREAD_CAP + 20; i++) await core.send("ben", { room: "busy" }, `m${i}`, "");
      expect((await core.listRooms("ann")).rooms.find((r) => r.name === "busy")).toMatchObject({ lastReadSeq: 1n, unread: UNREAD_CAP });
      // A direct message counts without ever being opened.
      await core.send("ben", { toUser: "ann" }, "psst @ann", "");
      expect((await core.listRooms("ann")).rooms.find((r) => r.name === "dm:ann:ben")).toMatchObject({ unread: 1, unreadMentions: 1 });
    });
  });
}
