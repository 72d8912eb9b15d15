// RoomFeed on its own, over a history the test fills: every message after the cursor exactly once,
// in seq order, whether it comes from history or live, and the room's other events routed.
import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { MessageSchema, type Message } from "../gen/chat/v1/chat_pb.ts";
import type { HistoryStore, Page, ReadRange } from "../engine/engine.ts";
import { messageEvent, presenceEvent, typingEvent } from "./events.ts";
import { RoomFeed } from "./room-feed.ts";
import { Session } from "./session.ts";
import { eventually } from "../../test/support/wait.ts";

const msg = (seq: number): Message => create(MessageSchema, { id: `m${seq}`, room: "r", seq: BigInt(seq), from: "ann", text: `#${seq}` });

/** A room's history in memory; `gate` holds reads until released, to put live messages in the middle of a catch-up. */
class FakeHistory implements Pick<HistoryStore, "read"> {
  readonly messages: Message[] = [];
  reads = 0;
  gate: Promise<void> | undefined;
  fail = false;

  add(...seqs: number[]): void {
    for (const s of seqs) this.messages.push(msg(s));
  }

  async read(_room: string, range: ReadRange): Promise<Page> {
    this.reads++;
    await this.gate;
    if (this.fail) throw new Error("disk on fire");
    const after = range.afterSeq ?? 0n;
    const rest = this.messages.filter((m) => m.seq > after);
    return { messages: rest.slice(0, range.limit), hasMore: rest.length > range.limit };
  }
}

function setup(limit = 1000) {
  const history = new FakeHistory();
  const session = new Session("s1", "ben", "grpc", limit);
  const failures: unknown[] = [];
  const feed = new RoomFeed("r", session, history as unknown as HistoryStore, (_feed, err) => failures.push(err));
  const seqs = () => session.take().flatMap((e) => (e.kind.case === "message" ? [Number(e.kind.value.seq)] : []));
  return { history, session, feed, failures, seqs };
}

test("from since_seq: history first, then live, each message once and in order", async () => {
  const { history, feed, seqs } = setup();
  history.add(1, 2, 3, 4, 5);
  feed.start(2n);
  await eventually(() => history.reads > 0, 1000, "a read", 1);
  await Bun.sleep(0);
  expect(seqs()).toEqual([3, 4, 5]);
  // Live now: the next seq goes straight through, one already seen is dropped.
  feed.offer(msg(6));
  feed.offer(msg(5));
  expect(seqs()).toEqual([6]);
});

test("live messages that arrive during the catch-up are neither lost nor repeated", async () => {
  const { history, feed, seqs } = setup();
  history.add(1, 2);
  let release!: () => void;
  history.gate = new Promise((r) => (release = r));
  feed.start(0n);
  // Stored and published while the first page is being read.
  history.add(3, 4);
  feed.offer(msg(3));
  feed.offer(msg(4));
  release();
  history.gate = undefined;
  const got: number[] = [];
  await eventually(() => (got.push(...seqs()), got.length >= 4), 1000, "four messages", 1);
  expect(got).toEqual([1, 2, 3, 4]);
});

test("a gap in the live messages sends the feed back to history", async () => {
  const { history, feed, seqs } = setup();
  feed.start(0n);
  await eventually(() => history.reads === 1, 1000, "the first read", 1);
  await Bun.sleep(0);
  history.add(1, 2, 3);
  // 1 and 2 were missed (another instance, a dropped delivery): 3 shows the gap.
  feed.offer(msg(3));
  const got: number[] = [];
  await eventually(() => (got.push(...seqs()), got.length >= 3), 1000, "three messages", 1);
  expect(got).toEqual([1, 2, 3]);
  expect(history.reads).toBe(2);
});

test("pages are at most half the queue, so live events of other rooms still fit", async () => {
  const { history, feed, session } = setup(10);
  history.add(...Array.from({ length: 12 }, (_, i) => i + 1));
  feed.start(0n);
  // Pages of 5 while they fit: the queue fills to its limit and the feed waits, the session lives.
  await eventually(() => session.pending === 10, 1000, "two pages", 1);
  await Bun.sleep(5);
  expect(session.pending).toBe(10);
  expect(session.closed).toBe(false);
  const got: number[] = [];
  await eventually(
    () => {
      for (const e of session.take()) if (e.kind.case === "message") got.push(Number(e.kind.value.seq));
      return got.length === 12;
    },
    1000,
    "every page",
    1,
  );
  expect(got).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
});

test("a history that fails is reported once, with the feed, and nothing is delivered out of order", async () => {
  const { history, feed, failures, seqs } = setup();
  history.add(1);
  history.fail = true;
  feed.start(0n);
  await eventually(() => failures.length === 1, 1000, "the failure", 1);
  expect((failures[0] as Error).message).toBe("disk on fire");
  feed.offer(msg(2));
  expect(seqs()).toEqual([]);
});

test("deliver routes the room's events: messages through the cursor, typing of others, presence", async () => {
  const { history, feed, session } = setup();
  feed.start(0n);
  await eventually(() => history.reads === 1, 1000, "the first read", 1);
  await Bun.sleep(0);
  feed.deliver(messageEvent(msg(1)));
  feed.deliver(typingEvent("r", "ben"));
  feed.deliver(typingEvent("r", "ann"));
  feed.deliver(presenceEvent("r", "cat", true, "ams"));
  feed.stop();
  feed.deliver(messageEvent(msg(2)));
  expect(session.take().map((e) => (e.kind.case === "typing" ? `typing ${e.kind.value.user}` : e.kind.case))).toEqual(["message", "typing ann", "presence"]);
});
