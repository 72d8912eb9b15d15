// The contract every Engine must pass (see engine.ts). Each implementation's test file calls
// engineContract with a factory; the NATS engine runs the same suite (nats.test.ts).
import { eventually } from "../../test/support/wait.ts";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { ChatEventSchema, RoomChangeKind, RoomChangeSchema, type ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { Draft, Engine, RoomRecord } from "./engine.ts";

const draft = (room: string, text: string, from = "ann", clientMsgId = ""): Draft => ({ room, from, text, clientMsgId, region: "test" });
const record = (name: string, owner = "olga"): RoomRecord => ({
  name,
  kind: "private",
  title: "t",
  topic: "",
  createdBy: owner,
  createdAtMs: 1,
  roles: new Map([[owner, "owner"]]),
  bans: new Map(),
  mutes: new Map(),
});
const typing = (room: string, user: string): ChatEvent => create(ChatEventSchema, { kind: { case: "typing", value: { room, user } } });

export function engineContract(name: string, factory: () => Promise<Engine> | Engine): void {
  describe(`engine contract: ${name}`, () => {
    let engine: Engine;
    beforeEach(async () => {
      engine = await factory();
    });
    afterEach(async () => {
      await engine.close();
    });

    test("seq starts at 1 and increases by one per message, per room", async () => {
      const a1 = await engine.history.append(draft("a", "1"));
      const b1 = await engine.history.append(draft("b", "1"));
      const a2 = await engine.history.append(draft("a", "2"));
      expect([a1.message.seq, b1.message.seq, a2.message.seq]).toEqual([1n, 1n, 2n]);
      expect(a2.message).toMatchObject({ room: "a", from: "ann", text: "2", region: "test" });
      expect(a2.message.id).not.toBe(a1.message.id);
      expect(a2.message.sentAt).toBeDefined();
      expect(await engine.history.lastSeq("a")).toBe(2n);
      expect(await engine.history.lastSeq("nowhere")).toBe(0n);
    });

    test("concurrent appends get distinct, gapless seqs", async () => {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => engine.history.append(draft("busy", `m${i}`, `u${i % 7}`))));
      const seqs = results.map((r) => Number(r.message.seq)).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    });

    test("a repeated client_msg_id from the same sender returns the original, stored once", async () => {
      const first = await engine.history.append(draft("d", "hello", "ann", "c1"));
      const again = await engine.history.append(draft("d", "hello again", "ann", "c1"));
      const [x, y] = await Promise.all([engine.history.append(draft("d", "x", "ann", "c2")), engine.history.append(draft("d", "x", "ann", "c2"))]);
      const other = await engine.history.append(draft("d", "same key, other sender", "ben", "c1"));
      expect(first.duplicate).toBe(false);
      expect(again.duplicate).toBe(true);
      expect(again.message.id).toBe(first.message.id);
      expect(again.message.text).toBe("hello");
      expect([x.duplicate, y.duplicate].sort()).toEqual([false, true]);
      expect(x.message.seq).toBe(y.message.seq);
      expect(other.duplicate).toBe(false);
      expect(other.message.seq).toBe(3n);
      const page = await engine.history.read("d", { limit: 10 });
      expect(page.messages.map((m) => m.text)).toEqual(["hello", "x", "same key, other sender"]);
    });

    test("read pages forward from afterSeq and backward from beforeSeq", async () => {
      for (let i = 1; i <= 10; i++) await engine.history.append(draft("p", `m${i}`));
      const texts = (p: { messages: { text: string }[] }) => p.messages.map((m) => m.text);
      const newest = await engine.history.read("p", { limit: 3 });
      expect(texts(newest)).toEqual(["m8", "m9", "m10"]);
      expect(newest.hasMore).toBe(true);
      const older = await engine.history.read("p", { beforeSeq: 8n, limit: 3 });
      expect(texts(older)).toEqual(["m5", "m6", "m7"]);
      const oldest = await engine.history.read("p", { beforeSeq: 3n, limit: 3 });
      expect(texts(oldest)).toEqual(["m1", "m2"]);
      expect(oldest.hasMore).toBe(false);
      const after = await engine.history.read("p", { afterSeq: 7n, limit: 2 });
      expect(texts(after)).toEqual(["m8", "m9"]);
      expect(after.hasMore).toBe(true);
      const tail = await engine.history.read("p", { afterSeq: 8n, limit: 5 });
      expect(texts(tail)).toEqual(["m9", "m10"]);
      expect(tail.hasMore).toBe(false);
      const between = await engine.history.read("p", { afterSeq: 2n, beforeSeq: 5n, limit: 10 });
      expect(texts(between)).toEqual(["m3", "m4"]);
      expect((await engine.history.read("empty", { limit: 5 })).messages).toEqual([]);
    });

    test("the bus delivers a topic's events in publish order, to subscribers only", async () => {
      const got: string[] = [];
      const other: string[] = [];
      const off = await engine.bus.subscribe("t1", (e) => got.push(e.kind.case === "typing" ? e.kind.value.user : "?"));
      await engine.bus.subscribe("t2", (e) => other.push(e.kind.case === "typing" ? e.kind.value.user : "?"));
      for (const u of ["a", "b", "c"]) await engine.bus.publish("t1", typing("t1", u));
      await waitFor(() => got.length === 3);
      expect(got).toEqual(["a", "b", "c"]);
      off();
      await engine.bus.publish("t1", typing("t1", "d"));
      await engine.bus.publish("t2", typing("t2", "z"));
      await waitFor(() => other.length === 1);
      expect(got).toEqual(["a", "b", "c"]);
      expect(other).toEqual(["z"]);
    });

    test("presence reports the first and last session of a user in a scope", async () => {
      const p = engine.presence;
      expect(await p.enter("room", "ann", "s1", "ams")).toBe(true);
      expect(await p.enter("room", "ann", "s2", "ams")).toBe(false);
      expect(await p.enter("room", "ben", "s3", "nrt")).toBe(true);
      const online = (await p.online("room")).sort((x, y) => x.user.localeCompare(y.user));
      expect(online).toEqual([
        { user: "ann", region: "ams", sessions: 2 },
        { user: "ben", region: "nrt", sessions: 1 },
      ]);
      expect(await p.leave("room", "ann", "s1")).toBe(false);
      expect(await p.leave("room", "ann", "s2")).toBe(true);
      expect(await p.leave("room", "ann", "s2")).toBe(false);
      expect((await p.online("room")).map((e) => e.user)).toEqual(["ben"]);
      expect(await p.online("elsewhere")).toEqual([]);
    });

    test("room directory: members, and direct-message rooms only for their two users", async () => {
      await engine.history.append(draft("lobby", "hi"));
      await engine.history.append(draft("dm:ann:ben", "hi ben"));
      await engine.rooms.addMember("lobby", "ann");
      await engine.rooms.addMember("lobby", "ben");
      await engine.rooms.addMember("dm:ann:ben", "ann");
      await engine.rooms.addMember("dm:ann:ben", "ben");
      const forAnn = await engine.rooms.list("ann", "", 100);
      expect(forAnn).toEqual({
        rooms: [
          { name: "dm:ann:ben", members: 2, lastSeq: 1n },
          { name: "lobby", members: 2, lastSeq: 1n },
        ],
        next: "",
      });
      expect((await engine.rooms.list("cat", "", 100)).rooms.map((r) => r.name)).toEqual(["lobby"]);
      await engine.rooms.removeMember("lobby", "ben");
      expect((await engine.rooms.list("ben", "", 100)).rooms.find((r) => r.name === "lobby")?.members).toBe(1);
    });

    test("unlisted rooms (names that start with _) are listed to their members only", async () => {
      await engine.history.append(draft("_sim-r1", "x"));
      await engine.history.append(draft("lobby", "x"));
      await engine.rooms.addMember("_sim-r1", "sim-u1");
      await engine.rooms.addMember("_sim-r1", "sim-u2");
      const names = async (user: string) => (await engine.rooms.list(user, "", 100)).rooms.map((r) => r.name);
      expect(await names("ann")).toEqual(["lobby"]);
      expect((await engine.rooms.list("sim-u1", "", 100)).rooms).toEqual([
        { name: "_sim-r1", members: 2, lastSeq: 1n },
        { name: "lobby", members: 0, lastSeq: 1n },
      ]);
      // Paging crosses the unlisted range the same way for members and others.
      expect((await engine.rooms.list("sim-u2", "_sim-r1", 100)).rooms.map((r) => r.name)).toEqual(["lobby"]);
      expect((await engine.rooms.list("sim-u2", "", 1)).next).toBe("_sim-r1");
      expect((await engine.rooms.list("ann", "", 1)).next).toBe("");
    });

    test("a room exists once it has a message: joining an empty room stores nothing", async () => {
      await engine.rooms.addMember("quiet", "ann");
      expect((await engine.rooms.list("ann", "", 100)).rooms).toEqual([]);
      await engine.history.append(draft("quiet", "first"));
      await engine.rooms.addMember("quiet", "ann");
      expect((await engine.rooms.list("ann", "", 100)).rooms).toEqual([{ name: "quiet", members: 1, lastSeq: 1n }]);
    });

    test("the directory pages by name, case-sensitively, and hides only the exact dm: prefix", async () => {
      // "DM:x:y" and "Dm:..." are not direct-message rooms (names are case-sensitive); the core refuses
      // such names, but a store must not hide them from everyone if one exists.
      const names = ["a", "B", "DM:ben:cat", "c", "dm-x", "dm:ann:ben", "dm:ben:cat", "dmA", "z"];
      for (const n of names) await engine.history.append(draft(n, "x", n.startsWith("dm:") ? n.split(":")[1] : "ann"));
      await engine.rooms.addMember("dm:ann:ben", "ann");
      await engine.rooms.addMember("dm:ben:cat", "ben");
      const seen: string[][] = [];
      let after = "";
      do {
        const page = await engine.rooms.list("ann", after, 3);
        seen.push(page.rooms.map((r) => r.name));
        after = page.next;
      } while (after);
      expect(seen).toEqual([
        ["B", "DM:ben:cat", "a"],
        ["c", "dm-x", "dm:ann:ben"],
        ["dmA", "z"],
      ]);
    });

    test("room records: created once, changed atomically under concurrent updates, deleted, and watched", async () => {
      const seen: string[] = [];
      const stop = engine.access.watch((room, now, before) => seen.push(`${room}:${before?.roles.size ?? "-"}>${now?.roles.size ?? "-"}`));
      expect(engine.access.room("team")).toBeUndefined();
      expect(await engine.access.createRoom(record("team"))).toBe(true);
      expect(await engine.access.createRoom(record("team", "eve"))).toBe(false);
      // Users with ids such as "__proto__" are map keys, not properties.
      const users = ["__proto__", ...Array.from({ length: 15 }, (_, i) => `u${i}`)];
      await Promise.all(users.map((u) => engine.access.updateRoom("team", (r) => (r.roles.set(u, "member"), r))));
      const stored = engine.access.room("team");
      expect([stored?.kind, stored?.createdBy, stored?.roles.size, stored?.roles.get("__proto__")]).toEqual(["private", "olga", 17, "member"]);
      expect(await engine.access.updateRoom("nowhere", (r) => r)).toBeUndefined();
      const refuse = () => {
        throw new Error("refused");
      };
      await expect(engine.access.updateRoom("team", refuse)).rejects.toThrow("refused");
      expect(engine.access.room("team")?.roles.size).toBe(17);
      expect(await engine.access.deleteRoom("team")).toBe(true);
      expect(await engine.access.deleteRoom("team")).toBe(false);
      expect(engine.access.room("team")).toBeUndefined();
      expect(await engine.access.createRoom(record("team", "eve"))).toBe(true);
      expect(engine.access.room("team")?.createdBy).toBe("eve");
      await waitFor(() => seen.length >= 19);
      stop();
      expect(seen[0]).toBe("team:->1");
      expect(seen.slice(-2)).toEqual(["team:17>-", "team:->1"]);
    });

    test("blocks: per user, set and cleared", async () => {
      await engine.access.setBlocked("ann", "bob", true);
      await engine.access.setBlocked("ann", "cat", true);
      await engine.access.setBlocked("ann", "bob", true);
      expect([...engine.access.blocked("ann")].sort()).toEqual(["bob", "cat"]);
      expect(engine.access.blocked("bob").size).toBe(0);
      await engine.access.setBlocked("ann", "bob", false);
      expect([...engine.access.blocked("ann")]).toEqual(["cat"]);
    });

    test("read state: per user and room, it only moves forward; a deleted room's goes with it", async () => {
      expect(await engine.reads.get("ann", ["a", "b"])).toEqual(new Map());
      // Read at 0 (opened while empty) is a read state too.
      expect(await engine.reads.raise("ann", "z", 0n)).toBe(0n);
      expect(await engine.reads.get("ann", ["z"])).toEqual(new Map([["z", 0n]]));
      expect(await engine.reads.raise("ann", "a", 5n)).toBe(5n);
      expect(await engine.reads.raise("ann", "a", 3n)).toBe(5n);
      expect(await engine.reads.raise("ann", "a", 7n)).toBe(7n);
      expect(await engine.reads.raise("ben", "a", 2n)).toBe(2n);
      expect(await engine.reads.raise("ann", "b", 1n)).toBe(1n);
      expect(await engine.reads.get("ann", ["a", "b", "c"])).toEqual(
        new Map([
          ["a", 7n],
          ["b", 1n],
        ]),
      );
      await engine.history.append(draft("a", "hi"));
      await engine.history.deleteRoom("a");
      expect(await engine.reads.get("ann", ["a", "b"])).toEqual(new Map([["b", 1n]]));
      expect(await engine.reads.get("ben", ["a"])).toEqual(new Map());
    });

    test("a reply keeps the seq it answers", async () => {
      await engine.history.append(draft("talk", "question"));
      const answer = await engine.history.append({ ...draft("talk", "answer", "ben"), replyTo: 1n });
      expect(answer.message.replyTo).toBe(1n);
      const page = await engine.history.read("talk", { afterSeq: 0n, limit: 10 });
      expect(page.messages.map((m) => [m.text, m.replyTo])).toEqual([
        ["question", 0n],
        ["answer", 1n],
      ]);
    });

    test("a change entry keeps its change; a deleted room is empty, listed nowhere, and starts again at 1", async () => {
      const change = create(RoomChangeSchema, { kind: RoomChangeKind.BANNED, user: "eve", reason: "spam" });
      await engine.history.append(draft("gone", "hi"));
      const entry = await engine.history.append({ ...draft("gone", ""), change });
      expect(entry.message.change?.reason).toBe("spam");
      const page = await engine.history.read("gone", { afterSeq: 0n, limit: 10 });
      expect(page.messages.map((m) => [m.seq, m.change?.kind ?? 0])).toEqual([
        [1n, 0],
        [2n, RoomChangeKind.BANNED],
      ]);
      await engine.rooms.addMember("gone", "ann");
      await engine.history.deleteRoom("gone");
      expect((await engine.history.read("gone", { afterSeq: 0n, limit: 10 })).messages).toEqual([]);
      expect(await engine.history.lastSeq("gone")).toBe(0n);
      expect((await engine.rooms.list("ann", "", 10)).rooms.map((r) => r.name)).not.toContain("gone");
      expect((await engine.history.append(draft("gone", "again"))).message.seq).toBe(1n);
    });
  });
}

const waitFor = (check: () => boolean, ms = 3000) => eventually(check, ms, "condition", 5);
