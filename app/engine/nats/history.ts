// History on one JetStream stream. The per-room seq (engine.ts: +1 per message, no gaps, no
// duplicates, one order across regions) comes from giving every (room, seq) a subject of its own,
// edgechat.room.<room>.<seq>, and publishing with Nats-Expected-Last-Subject-Sequence: 0, "this
// subject holds nothing yet". A seq is claimed by storing its message, at most once: two regions
// racing for seq n both propose, the first one in the Raft log is stored, the other is refused
// ("wrong last sequence") and retries as n + 1 after a look at the room. No gap either: a writer
// only ever claims last + 1 of a seq it saw stored. The PubAck comes after replication.
//
// Why not one subject per room, with the expected sequence of the room's last message? On a
// clustered stream, nats-server before 2.9.21 checks a non-zero expected subject sequence only on
// the leader before proposing (nats-server#4320): concurrent publishes all pass, duplicates follow.
// A zero expectation is checked by every replica when it applies the entry, in log order.
//
// A message that changes (an edit, a delete, a reaction) gets a new version on its own subject,
// published with the expected sequence of the version it replaces (compare-and-set), which is then
// erased: JetStream overwrites an erased message, so a deleted text is gone from the stream's files.
// The entry that records the change comes after it, as an append like any other. Clustered
// nats-server before 2.9.21 does not check that expectation against concurrent publishes (the issue
// above): two changes of the same message at the same moment through different servers may then
// lose one. Changes through one instance are made one at a time per room.
import { ConnectError } from "@connectrpc/connect";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { JetStreamApiError, type StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { MessageSchema, MessageUpdateSchema, type Message } from "../../gen/chat/v1/chat_pb.ts";
import type { Appended, Draft, HistoryStore, Page, ReadRange, UpdateDraft, Updated } from "../engine.ts";
import { attachTargets } from "../updates.ts";
import { KeyedQueue } from "../keyed-queue.ts";
import { WEBHOOKS_HEADER } from "./outbox.ts";
import { unavailable, type Conn } from "./conn.ts";
import { msgId, roomSubject, STREAM, updateMsgId } from "./names.ts";
import { assemble, findNewest, mapLimit, pageRange } from "./reads.ts";
import type { Io } from "./setup.ts";

const DEADLINE_MS = 5_000;
const PUBLISH_TIMEOUT_MS = 2_000;
const WRONG_LAST_SEQUENCE = 10071;
const CACHE = 10_000;
const PARALLEL_GETS = 64;
/**
 * A header on a message's newest version: the keys of the last changes applied to it, so that a
 * retry finds its change made and only appends the entry, which a crash may have left out.
 */
const APPLIED = "Edgechat-Applied";
const APPLIED_KEEP = 32;

/** What the room directory does for history: a lower bound of each room's newest seq. */
export interface SeqFloor {
  get(room: string): Promise<number>;
  /** Called after each stored message; resolves once the room is listed (its first time here). */
  record(room: string, seq: number): Promise<void>;
  /** A deleted room: its floor and membership go, so that it is listed nowhere and starts again at 1. */
  drop(room: string): Promise<void>;
}

type Via = "nearest" | "leader";

export class NatsHistory implements HistoryStore {
  /** The newest seq this instance saw stored, per room, and when: from appends, live and reads. */
  private readonly newestSeen = new Map<string, { seq: number; at: number }>();
  private readonly queues = new KeyedQueue();

  constructor(
    private readonly io: () => Io,
    private readonly conn: Conn,
    private readonly floor: SeqFloor,
    /** How long a cached seq may be trusted without a look: well under the stream's max age. */
    private readonly cacheMs: number,
  ) {}

  append(draft: Draft): Promise<Appended> {
    try {
      this.io();
    } catch (err) {
      return Promise.reject(err);
    }
    // One append per room at a time from this instance: concurrent ones would claim the same seq
    // and all but one would have to come back for the next.
    return this.queues.run(draft.room, () => this.publish(draft));
  }

  update(u: UpdateDraft): Promise<Updated> {
    try {
      this.io();
    } catch (err) {
      return Promise.reject(err);
    }
    // In line with the room's appends: the entry is one, and the next change reads this one's version.
    return this.queues.run(u.room, () => this.change(u));
  }

  private async change(u: UpdateDraft): Promise<Updated> {
    const key = updateMsgId(u);
    const deadline = Date.now() + DEADLINE_MS;
    let via: Via = "nearest";
    let message: Message | undefined;
    for (;;) {
      const { js, jsm } = this.io();
      const stored = await this.loadStored({ last_by_subj: roomSubject(u.room, Number(u.targetSeq)) }, via);
      const current = stored ? fromBinary(MessageSchema, stored.data) : undefined;
      const applied = stored?.header?.get(APPLIED)?.split(",") ?? [];
      if (current && u.clientMsgId && applied.includes(key)) {
        message = current;
        break;
      }
      const next = u.change(current);
      if (!next || !current || !stored) return { message: current!, duplicate: false };
      next.version = current.version + 1n;
      const h = natsHeaders();
      const keys = u.clientMsgId ? [...applied.slice(1 - APPLIED_KEEP), key] : applied;
      if (keys.length > 0) h.set(APPLIED, keys.join(","));
      // Out of the try: a message that cannot be encoded is a bug to report, not a publish to retry.
      const data = toBinary(MessageSchema, next);
      try {
        const timeout = Math.max(100, Math.min(PUBLISH_TIMEOUT_MS, deadline - Date.now()));
        await this.conn.race(
          js.publish(roomSubject(u.room, Number(u.targetSeq)), data, {
            expect: { lastSubjectSequence: stored.seq },
            headers: h,
            timeout,
          }),
        );
      } catch (err) {
        if (Date.now() > deadline) throw unavailable(`message change timed out (${errText(err)})`);
        if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
          // Changed meanwhile (or the nearest replica was behind): again, on the newest version.
          via = "leader";
          await Bun.sleep(Math.random() * 20);
          continue;
        }
        if (!this.conn.connected) throw unavailable(`message change failed (${errText(err)})`);
        await Bun.sleep(50 + Math.random() * 200);
        continue;
      }
      // The old version goes, overwritten: after a delete, its text must be nowhere.
      await this.conn.race(jsm.streams.deleteMessage(STREAM, stored.seq, true)).catch(() => {});
      message = next;
      break;
    }
    const update = create(MessageUpdateSchema, { kind: u.kind, targetSeq: u.targetSeq, emoji: u.emoji, version: message.version });
    const now = message;
    const webhooks = u.webhooks && ((entry: Message) => u.webhooks!(entry, now));
    const { message: entry, duplicate } = await this.publish(
      { room: u.room, from: u.from, text: "", clientMsgId: u.clientMsgId, region: u.region, update, webhooks },
      key,
    );
    return { message, entry: attachTargets([entry], [message])[0], duplicate };
  }

  /** The changed message of each update entry of a page, attached: the page's own copy, or a lookup no older than the entry. */
  private async withTargets(room: string, page: Message[]): Promise<Message[]> {
    const entries = page.filter((m) => m.update);
    if (entries.length === 0) return page;
    const inPage = new Map(page.map((m) => [m.seq, m]));
    const targets = await mapLimit(entries, PARALLEL_GETS, async (e) => {
      const seq = e.update!.targetSeq;
      const have = inPage.get(seq);
      if (have && have.version >= e.update!.version) return have;
      return this.current(room, seq, e.update!.version);
    });
    return attachTargets(
      page,
      targets.filter((m): m is Message => m !== null),
    );
  }

  /** Message `seq` of a room, at least at version `atLeast`: from the nearest replica, or the leader when that one is behind. */
  async current(room: string, seq: bigint, atLeast: bigint): Promise<Message | null> {
    const near = await this.load({ last_by_subj: roomSubject(room, Number(seq)) });
    if (near && near.version >= atLeast) return near;
    return this.load({ last_by_subj: roomSubject(room, Number(seq)) }, "leader");
  }

  /** An update entry as it goes live: with its changed message attached. */
  async attach(room: string, entry: Message): Promise<Message> {
    return (await this.withTargets(room, [entry]))[0];
  }

  private async publish(draft: Draft, key?: string): Promise<Appended> {
    const id = crypto.randomUUID();
    const dedupe = key ?? msgId(draft.room, draft.from, draft.clientMsgId, id);
    const deadline = Date.now() + DEADLINE_MS;
    const cached = this.newestSeen.get(draft.room);
    // The cache is usually right; when it is not, the refused publish says so, at the price of one retry.
    let seq = (cached && Date.now() - cached.at < this.cacheMs ? cached.seq : await this.newest(draft.room, "nearest")) + 1;
    for (let attempt = 1; ; attempt++) {
      const { js } = this.io();
      const { webhooks: _w, ...fields } = draft;
      const message = create(MessageSchema, { ...fields, id, seq: BigInt(seq), sentAt: timestampNow() });
      // The entry's webhook deliveries ride in a header, stored with it in this one write (outbox.ts).
      const rows = draft.webhooks?.(message) ?? [];
      const h = rows.length ? natsHeaders() : undefined;
      h?.set(WEBHOOKS_HEADER, JSON.stringify(rows));
      try {
        const timeout = Math.max(100, Math.min(PUBLISH_TIMEOUT_MS, deadline - Date.now()));
        const ack = await this.conn.race(
          js.publish(roomSubject(draft.room, seq), toBinary(MessageSchema, message), {
            msgID: dedupe,
            expect: { lastSubjectSequence: 0 },
            timeout,
            headers: h,
          }),
        );
        // A clustered leader answers a duplicate still in flight with seq 0: ask again shortly.
        if (ack.duplicate && ack.seq === 0) throw new Error("duplicate in flight");
        const stored = ack.duplicate ? await this.load({ seq: ack.seq }) : message;
        if (!stored) throw new Error(`stream message ${ack.seq} is gone`);
        this.observe(draft.room, Number(stored.seq));
        await this.floor.record(draft.room, Number(stored.seq)).catch(() => {});
        // Our own earlier attempt (its ack lost to a timeout) is not a duplicate to the caller.
        return { message: stored, duplicate: stored.id !== id };
      } catch (err) {
        if (Date.now() > deadline) throw unavailable(`history append timed out (${errText(err)})`);
        if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
          // Seq taken: the leader knows at least up to it.
          seq = (await this.newest(draft.room, "leader", seq)) + 1;
          // Others are writing this room too: spread the retries out.
          if (attempt > 2) await Bun.sleep(Math.random() * Math.min(100, 2 ** attempt));
          continue;
        }
        if (!this.conn.connected) throw unavailable(`history append failed (${errText(err)})`);
        // A timeout, no responders (a leader election) or a lost ack: the same message again; its
        // Nats-Msg-Id makes a second copy impossible within the duplicate window.
        await Bun.sleep(50 + Math.random() * 200);
      }
    }
  }

  async read(room: string, range: ReadRange): Promise<Page> {
    if (range.limit <= 0) return { messages: [], hasMore: false };
    const { from, end, hasMore } = pageRange(range, await this.newest(room, "nearest"));
    if (from > end) return { messages: [], hasMore: false };
    const seqs = Array.from({ length: end - from + 1 }, (_, i) => from + i);
    const get = (s: number, via?: Via) => this.load({ last_by_subj: roomSubject(room, s) }, via);
    const found = await mapLimit(seqs, PARALLEL_GETS, (s) => get(s));
    // A miss means a replica that has not caught up (seen while a new stream leader takes over),
    // or a message that expired. The leader tells which; this is rare, so it costs little.
    const missing = seqs.flatMap((s, i) => (found[i] ? [] : [i]));
    await mapLimit(missing, PARALLEL_GETS, async (i) => (found[i] = await get(seqs[i], "leader")));
    if (!found.some(Boolean) && range.afterSeq !== undefined) {
      // Read forwards from expired seqs: continue from the oldest message still there.
      const oldest = Number((await this.load({ next_by_subj: roomSubject(room, "*"), seq: 0 }, "leader"))?.seq ?? 0);
      if (oldest > from) return this.read(room, { ...range, afterSeq: BigInt(oldest - 1) });
    }
    const page = assemble(found, hasMore, range.afterSeq !== undefined);
    return { messages: await this.withTargets(room, page.messages), hasMore: page.hasMore };
  }

  async deleteRoom(room: string): Promise<void> {
    const { jsm } = this.io();
    await this.conn.call(jsm.streams.purge(STREAM, { filter: roomSubject(room, "*") }), "history purge");
    await this.floor.drop(room);
    this.forget(room);
  }

  /** Forgets what this instance knew of a room's newest seq (the room was deleted somewhere). */
  forget(room: string): void {
    this.newestSeen.delete(room);
  }

  async lastSeq(room: string): Promise<bigint> {
    return BigInt(await this.newest(room, "nearest"));
  }

  /** The newest seq this instance knows of in `room`, without asking anyone. */
  known(room: string): bigint {
    return BigInt(this.newestSeen.get(room)?.seq ?? 0);
  }

  /** A stored message seen (appended, live, or found newest): the cache only moves forward. */
  observe(room: string, seq: number): void {
    const had = this.newestSeen.get(room);
    if (had && had.seq > seq) return;
    this.newestSeen.delete(room);
    if (this.newestSeen.size >= CACHE) this.newestSeen.delete(this.newestSeen.keys().next().value!);
    this.newestSeen.set(room, { seq, at: Date.now() });
  }

  /** The room's message with seq `seq`, or null. */
  async message(room: string, seq: number): Promise<Message | null> {
    return this.load({ last_by_subj: roomSubject(room, seq) });
  }

  /**
   * The room's newest seq: from the best lower bound at hand (`atLeast`, the cache, or the room's
   * floor in the directory, written seconds after each message) forward, one lookup per step.
   */
  async newest(room: string, via: Via, atLeast = 0): Promise<number> {
    const cached = this.newestSeen.get(room);
    // A stale cache may predate expired messages that others wrote after it: the floor covers those.
    const fresh = cached && Date.now() - cached.at < this.cacheMs;
    let floorError: unknown;
    const floor = fresh ? 0 : await this.floor.get(room).catch((err) => ((floorError = err), 0));
    const start = Math.max(atLeast, cached?.seq ?? 0, floor);
    const seq = await findNewest(start, async (s) => (await this.load({ last_by_subj: roomSubject(room, s) }, via)) !== null);
    // Without the floor, "no message" may be "every message expired": only the floor can tell.
    if (seq === 0 && floorError) throw floorError;
    if (seq > 0) this.observe(room, seq);
    return seq;
  }

  async close(): Promise<void> {
    await this.queues.settled();
  }

  /** One message by a direct get (from the nearest replica), or from the stream leader. */
  private async load(query: Record<string, unknown>, via: Via = "nearest"): Promise<Message | null> {
    const sm = await this.loadStored(query, via);
    return sm && fromBinary(MessageSchema, sm.data);
  }

  private async loadStored(query: Record<string, unknown>, via: Via): Promise<StoredMsg | null> {
    const { jsm } = this.io();
    try {
      const get = via === "leader" ? jsm.streams.getMessage(STREAM, query as never) : jsm.direct.getMessage(STREAM, query as never);
      return await this.conn.race(get);
    } catch (err) {
      throw err instanceof ConnectError ? err : unavailable(`history read failed (${errText(err)})`);
    }
  }
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));
