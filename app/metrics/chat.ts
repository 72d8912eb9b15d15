// edgechat's own metrics: what the chat is doing, labelled by protocol where that tells something.
import { Counter, Gauge, type Registry } from "./prom.ts";
import { FastHistogram } from "./fast-histogram.ts";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import type { ChatObserver } from "../core/observer.ts";
import { AUTH_FAILURES } from "../core/auth.ts";

export interface ChatGauges {
  rooms(): number;
  /** Live units of concurrency: in-flight RPC handlers plus background loops (see sidecar/README.md). */
  tasks(): number;
}

export interface ChatMetrics extends ChatObserver {
  authFailed(protocol: string, reason: string): void;
  setDraining(draining: boolean): void;
  /** A connection refused or closed by a rule of transport/connection-guard.ts. */
  connectionRefused(reason: string): void;
}

export function chatMetrics(registry: Registry, gauges: ChatGauges): ChatMetrics {
  const r = [registry];
  const sessions = new Gauge({ name: "edgechat_sessions_open", help: "Open chat sessions (streams), by protocol.", labelNames: ["protocol"], registers: r });
  new Gauge({
    name: "edgechat_rooms",
    help: "Rooms with at least one session on this instance.",
    registers: r,
    collect() {
      this.set(gauges.rooms());
    },
  });
  new Gauge({
    name: "edgechat_tasks",
    help: "Live units of concurrency: in-flight RPC handlers plus background loops.",
    registers: r,
    collect() {
      this.set(gauges.tasks());
    },
  });
  const accepted = new Counter({
    name: "edgechat_messages_accepted_total",
    help: "Messages stored durably and acknowledged, by the sender's protocol.",
    labelNames: ["protocol"],
    registers: r,
  });
  // Deliveries are counted in a plain number and handed to prom-client when scraped: an inc() per
  // delivery costs more than the delivery's own bookkeeping.
  let deliveredSinceScrape = 0;
  new Counter({
    name: "edgechat_messages_delivered_total",
    help: "Message events handed to a stream for writing, live and replayed.",
    registers: r,
    collect() {
      this.inc(deliveredSinceScrape);
      deliveredSinceScrape = 0;
    },
  });
  const latency = new FastHistogram(
    "edgechat_delivery_latency_seconds",
    "From a message's acceptance to its hand-off to a subscriber's stream (live deliveries only).",
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registry,
  );
  const slow = new Counter({
    name: "edgechat_slow_consumers_total",
    help: "Streams ended because their reader fell a whole queue behind.",
    labelNames: ["protocol"],
    registers: r,
  });
  const limited = new Counter({
    name: "edgechat_rate_limited_total",
    help: "Calls refused by a per-user rate limit: sends, joins and leaves, reads.",
    labelNames: ["protocol", "limit"],
    registers: r,
  });
  const auth = new Counter({
    name: "edgechat_auth_failures_total",
    help: "Calls refused for missing or bad credentials.",
    labelNames: ["protocol", "reason"],
    registers: r,
  });
  // Every protocol present from the start, so rate() and sums have a series before the first event.
  for (const protocol of ["grpc", "grpc_web", "connect", "websocket"]) {
    sessions.set({ protocol }, 0);
    accepted.inc({ protocol }, 0);
    slow.inc({ protocol }, 0);
    for (const limit of ["send", "join", "read"]) limited.inc({ protocol, limit }, 0);
    for (const reason of AUTH_FAILURES) auth.inc({ protocol, reason }, 0);
  }
  const refused = new Counter({
    name: "edgechat_connections_refused_total",
    help: "Connections refused or closed by a connection rule: caps, timeouts, resets.",
    labelNames: ["reason"],
    registers: r,
  });
  const draining = new Gauge({ name: "edgechat_draining", help: "1 while the server drains for shutdown.", registers: r });
  draining.set(0);

  return {
    sessionOpened: (protocol) => sessions.inc({ protocol }),
    sessionClosed: (protocol) => sessions.dec({ protocol }),
    messageAccepted: (protocol) => accepted.inc({ protocol }),
    eventWritten(event: ChatEvent, acceptedAt: number | undefined) {
      if (event.kind.case !== "message" || !event.kind.value.room) return;
      deliveredSinceScrape++;
      if (acceptedAt !== undefined) latency.observe((performance.now() - acceptedAt) / 1000);
    },
    slowConsumer: (protocol) => slow.inc({ protocol }),
    rateLimited: (protocol, limit) => limited.inc({ protocol, limit }),
    authFailed: (protocol, reason) => auth.inc({ protocol, reason }),
    setDraining: (on) => draining.set(on ? 1 : 0),
    connectionRefused: (reason) => refused.inc({ reason }),
  };
}
