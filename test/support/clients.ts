// Real clients for the tests: connect-node transports over each protocol, and a helper that reads
// a stream in the background so a test can wait for what it expects.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, ConnectError, type Client, type Transport } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ChatRequestSchema, ChatService, type ChatEvent, type ChatRequest } from "../../app/gen/chat/v1/chat_pb.ts";
import { eventually } from "./wait.ts";

export type Protocol = "grpc" | "connect" | "grpc-web";

export function transport(baseUrl: string, protocol: Protocol, http: "1.1" | "2" = "2", useBinaryFormat = true): Transport {
  const opts = { baseUrl, httpVersion: http, useBinaryFormat } as const;
  if (protocol === "grpc") return createGrpcTransport({ baseUrl, useBinaryFormat });
  if (protocol === "grpc-web") return createGrpcWebTransport(opts);
  return createConnectTransport(opts);
}

export function chatClient(t: Transport): Client<typeof ChatService> {
  return createClient(ChatService, t);
}

/** Collects a stream's events; `until` waits for one matching a predicate. */
export class Reader {
  readonly events: ChatEvent[] = [];
  error: ConnectError | undefined;
  done = false;
  readonly finished: Promise<void>;

  constructor(stream: AsyncIterable<ChatEvent>) {
    this.finished = (async () => {
      try {
        for await (const e of stream) this.events.push(e);
      } catch (err) {
        this.error = ConnectError.from(err);
      } finally {
        this.done = true;
      }
    })();
  }

  of<K extends ChatEvent["kind"]["case"]>(kind: K) {
    return this.events.filter((e) => e.kind.case === kind).map((e) => e.kind.value) as Extract<ChatEvent["kind"], { case: K }>["value"][];
  }

  messages(room?: string) {
    return this.of("message").filter((m) => room === undefined || m.room === room);
  }

  async until<T>(pick: (r: Reader) => T, ms = 5000, what = "event"): Promise<NonNullable<T>> {
    return eventually<NonNullable<T>>(
      () => {
        const v = pick(this);
        if (!v && this.done) throw new Error(`stream ended (${this.error?.message ?? "ok"}) before ${what}`);
        return v as NonNullable<T>;
      },
      ms,
      what,
    );
  }
}

/** A bidi Chat stream: `send` writes requests, `reader` collects the events. */
export function openChat(client: Client<typeof ChatService>, user: string | undefined, headers: Record<string, string> = {}) {
  const requests = createWritableIterable<ChatRequest>();
  const abort = new AbortController();
  const h = user ? { "x-user": user, ...headers } : headers;
  const reader = new Reader(client.chat(requests, { headers: h, signal: abort.signal }));
  return {
    reader,
    send: (req: MessageInitShape<typeof ChatRequestSchema>) => requests.write(create(ChatRequestSchema, req)),
    close: () => requests.close(),
    abort: () => abort.abort(),
  };
}

/** The ConnectError a call fails with; fails the test if the call succeeds. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}
