// The NATS engine's webhook outbox, in JetStream, so that several regions deliver each event once:
//
// - A message's deliveries travel in a header of the message itself (history.ts), stored with it in
//   one write. A router, one durable consumer of the history stream shared by every instance, takes
//   each stored entry once (whichever instance gets it) and files its deliveries into a work-queue
//   stream, one subject per endpoint, each with a Nats-Msg-Id of its own: a router that crashes before
//   its ack is redelivered the entry, and the second filing is dropped as a duplicate.
// - Each endpoint has one durable consumer of that stream, shared by every instance: a delivery goes
//   to one instance at a time. Delivered: acked (gone). Failed: nak'ed with the backoff as its
//   delay. Given up: copied to the dead-letter stream and terminated. An instance that dies while
//   delivering leaves it unacked, and after the ack wait another instance gets it again.
import { AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders, nanos } from "@nats-io/transport-node";
import type { Delivery, OutboxRow, WebhookOutbox } from "../engine.ts";
import type { Logger } from "../../log.ts";
import type { Conn } from "./conn.ts";
import { STREAM, token, untoken } from "./names.ts";
import type { Io } from "./setup.ts";

export const OUTBOX_STREAM = "EDGECHAT_WEBHOOKS";
export const DEAD_STREAM = "EDGECHAT_WEBHOOKS_DEAD";
/** The header of a history entry that carries its webhook deliveries (JSON: OutboxRow[]). */
export const WEBHOOKS_HEADER = "Edgechat-Webhooks";
const ROUTER = "edgechat-webhook-router";
const liveSubject = (endpoint: string) => `edgechat.webhook.${token(endpoint)}`;
const deadSubject = (endpoint: string) => `edgechat.webhook_dead.${token(endpoint)}`;

type Stored = OutboxRow & { createdAtMs: number };

export class NatsOutbox implements WebhookOutbox {
  /** Deliveries this instance holds (received, not yet acked or nak'ed), oldest first. */
  private readonly ready: { d: Delivery; msg: JsMsg }[] = [];
  private readonly held = new WeakMap<Delivery, JsMsg>();
  private readonly stops: (() => void)[] = [];
  /** The router and the endpoints this instance consumes for, once started. */
  private routing = false;
  private readonly consuming = new Set<string>();

  constructor(
    private readonly io: () => Io,
    private readonly conn: Conn,
    private readonly log: Logger,
  ) {}

  /**
   * Sets up the streams and consumers, and starts the router and one consumer per endpoint, those
   * not started before (the dispatcher calls it again for each endpoint made later). An engine
   * that sends no webhooks makes none of this.
   */
  async start(endpoints: string[], ackWaitMs: number): Promise<void> {
    const { jsm, js, replicas } = this.io();
    const ensure = async (name: string, subjects: string[], retention: RetentionPolicy) => {
      const info = await jsm.streams.info(name).catch(() => null);
      if (info) return;
      // Another instance may make it at the same moment: identical configs, so what matters is that it exists.
      await jsm.streams.add({ name, subjects, retention, storage: StorageType.File, num_replicas: replicas, discard: DiscardPolicy.Old }).catch(async (err) => {
        if (!(await jsm.streams.info(name).catch(() => null))) throw err;
      });
    };
    await ensure(OUTBOX_STREAM, ["edgechat.webhook.*"], RetentionPolicy.Workqueue);
    await ensure(DEAD_STREAM, ["edgechat.webhook_dead.*"], RetentionPolicy.Limits);
    const durable = async (stream: string, name: string, filter: string, deliver: DeliverPolicy) => {
      await jsm.consumers
        .add(stream, {
          durable_name: name,
          ack_policy: AckPolicy.Explicit,
          filter_subject: filter,
          deliver_policy: deliver,
          ack_wait: nanos(ackWaitMs),
          max_ack_pending: 256,
        })
        .catch((err) => {
          // Another instance made it first, with the same config.
          if (!(err instanceof JetStreamApiError)) throw err;
        });
      return js.consumers.get(stream, name);
    };
    if (!this.routing) {
      const router = await durable(STREAM, ROUTER, "edgechat.room.>", DeliverPolicy.New);
      this.loop(await router.consume({ max_messages: 64 }), (m) => this.route(m));
      this.routing = true;
    }
    for (const endpoint of endpoints) {
      if (this.consuming.has(endpoint)) continue;
      const c = await durable(OUTBOX_STREAM, `edgechat-webhook-${token(endpoint)}`, liveSubject(endpoint), DeliverPolicy.All);
      this.loop(await c.consume({ max_messages: 16 }), (m) => this.take(m));
      this.consuming.add(endpoint);
    }
  }

  private loop(messages: AsyncIterable<JsMsg> & { stop(): void }, handle: (m: JsMsg) => Promise<void> | void): void {
    this.stops.push(() => messages.stop());
    void (async () => {
      for await (const m of messages) {
        try {
          await handle(m);
        } catch (err) {
          this.log.error("webhook outbox message failed", { err });
          m.nak(1000);
        }
      }
    })();
  }

  /** A stored history entry: its deliveries filed, once, then the entry acked. */
  private async route(m: JsMsg): Promise<void> {
    const raw = m.headers?.get(WEBHOOKS_HEADER);
    if (raw) await this.add(JSON.parse(raw) as OutboxRow[], m.info.timestampNanos ? Math.floor(Number(m.info.timestampNanos) / 1e6) : Date.now());
    m.ack();
  }

  private take(m: JsMsg): void {
    const s = m.json<Stored>();
    const d: Delivery = { ...s, attempts: m.info.deliveryCount - 1, lastError: "" };
    this.held.set(d, m);
    this.ready.push({ d, msg: m });
  }

  async add(rows: OutboxRow[], createdAtMs = Date.now()): Promise<void> {
    const { js } = this.io();
    for (const r of rows) {
      const data = JSON.stringify({ ...r, createdAtMs } satisfies Stored);
      await this.conn.race(js.publish(liveSubject(r.endpoint), data, { msgID: `${r.eventId}:${r.endpoint}` }));
    }
  }

  async due(_nowMs: number, limit: number): Promise<Delivery[]> {
    return this.ready.splice(0, limit).map((x) => x.d);
  }

  async delivered(d: Delivery): Promise<void> {
    this.held.get(d)?.ack();
  }

  async failed(d: Delivery, nextAtMs: number | undefined, error: string): Promise<void> {
    const m = this.held.get(d);
    if (!m) return;
    if (nextAtMs !== undefined) return m.nak(Math.max(0, nextAtMs - Date.now()));
    const h = natsHeaders();
    h.set("Edgechat-Last-Error", error.slice(0, 500));
    h.set("Edgechat-Attempts", String(d.attempts + 1));
    await this.conn.race(this.io().js.publish(deadSubject(d.endpoint), m.data, { headers: h }));
    m.term();
  }

  /** The dead letters of one endpoint (or all), read from the dead-letter stream. */
  private async dead(endpoint: string, limit: number): Promise<{ d: Delivery; seq: number; data: Uint8Array }[]> {
    const { jsm } = this.io();
    const out: { d: Delivery; seq: number; data: Uint8Array }[] = [];
    const info = await jsm.streams.info(DEAD_STREAM).catch(() => null);
    if (!info) return out;
    const subject = endpoint ? deadSubject(endpoint) : "edgechat.webhook_dead.*";
    for (let seq = info.state.first_seq; seq > 0 && seq <= info.state.last_seq && out.length < limit; ) {
      const sm = await jsm.streams.getMessage(DEAD_STREAM, { next_by_subj: subject, seq } as never).catch(() => null);
      if (!sm) break;
      const s = JSON.parse(new TextDecoder().decode(sm.data)) as Stored;
      const attempts = Number(sm.header?.get("Edgechat-Attempts") ?? "0");
      out.push({ d: { ...s, attempts, lastError: sm.header?.get("Edgechat-Last-Error") ?? "" }, seq: sm.seq, data: sm.data });
      seq = sm.seq + 1;
    }
    return out;
  }

  async deadLetters(endpoint: string, limit: number): Promise<Delivery[]> {
    return (await this.dead(endpoint, limit)).map((x) => x.d);
  }

  async redeliver(endpoint: string): Promise<number> {
    const { js, jsm } = this.io();
    const dead = await this.dead(endpoint, Number.MAX_SAFE_INTEGER);
    for (const x of dead) {
      // A Nats-Msg-Id of its own: the first filing's may still be in the duplicate window.
      await js.publish(liveSubject(x.d.endpoint), x.data, { msgID: `${x.d.eventId}:${x.d.endpoint}:${crypto.randomUUID()}` });
      await jsm.streams.deleteMessage(DEAD_STREAM, x.seq);
    }
    return dead.length;
  }

  async stats(): Promise<Map<string, { pending: number; retrying: number; dead: number; oldestMs: number | undefined }>> {
    const { jsm } = this.io();
    const out = new Map<string, { pending: number; retrying: number; dead: number; oldestMs: number | undefined }>();
    for await (const c of jsm.consumers.list(OUTBOX_STREAM)) {
      const subject = c.config.filter_subject ?? "";
      const endpoint = untoken(subject.split(".")[2] ?? "");
      // The oldest delivery not yet made: the first of the endpoint's subject after the ack floor.
      const waiting = c.num_pending + c.num_ack_pending > 0;
      const oldest = waiting
        ? await jsm.streams.getMessage(OUTBOX_STREAM, { next_by_subj: subject, seq: c.ack_floor.stream_seq + 1 } as never).catch(() => null)
        : null;
      const oldestMs = oldest ? (JSON.parse(new TextDecoder().decode(oldest.data)) as Stored).createdAtMs : undefined;
      out.set(endpoint, { pending: c.num_pending, retrying: c.num_ack_pending, dead: 0, oldestMs });
    }
    const dead = await jsm.streams.info(DEAD_STREAM, { subjects_filter: ">" }).catch(() => null);
    for (const [subject, n] of Object.entries(dead?.state.subjects ?? {})) {
      const endpoint = untoken(subject.split(".")[2] ?? "");
      const s = out.get(endpoint) ?? { pending: 0, retrying: 0, dead: 0, oldestMs: undefined };
      s.dead = n;
      out.set(endpoint, s);
    }
    return out;
  }

  close(): void {
    for (const stop of this.stops.splice(0)) stop();
    // What this instance held goes back to the others after the ack wait.
  }
}
