// What the core reports about itself, for metrics. The core calls these; app/metrics implements
// them with prom-client, tests and tools may leave them out.
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";

export interface ChatObserver {
  sessionOpened(protocol: string): void;
  sessionClosed(protocol: string): void;
  messageAccepted(protocol: string): void;
  /** An event was handed to the transport for writing; `acceptedAt` (performance.now()) for live messages. */
  eventWritten(event: ChatEvent, acceptedAt: number | undefined): void;
  slowConsumer(protocol: string): void;
  /** A call refused by a per-user rate: `limit` is "send", "join" (joins and leaves) or "read". */
  rateLimited(protocol: string, limit: string): void;
}

export const noopObserver: ChatObserver = {
  sessionOpened() {},
  sessionClosed() {},
  messageAccepted() {},
  eventWritten() {},
  slowConsumer() {},
  rateLimited() {},
};
