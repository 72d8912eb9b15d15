// A /ws client for the tests: the `ws` package (a client nobody here wrote), each frame parsed as
// a ChatEvent in protobuf JSON, and how the connection closed.
import { create, fromJsonString, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { WebSocket } from "ws";
import { ChatEventSchema, ChatRequestSchema, type ChatEvent, type PresenceAction } from "../../app/gen/chat/v1/chat_pb.ts";
import { eventually } from "./wait.ts";

type Kind = ChatEvent["kind"]["case"];
export type ValueOf<K extends Kind> = Extract<ChatEvent["kind"], { case: K }>["value"];

/** A /ws client: collects the events (each frame parsed as a ChatEvent) and how the connection closed. */
export class WsClient {
  readonly ws: WebSocket;
  readonly events: ChatEvent[] = [];
  /** Frames that were not a ChatEvent in protobuf JSON (the gateway never sends one). */
  readonly unparsed: string[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly opened: Promise<void>;
  readonly finished: Promise<void>;

  constructor(url: string, opts: { headers?: Record<string, string>; ca?: Buffer } = {}) {
    this.ws = new WebSocket(url, { headers: opts.headers, ca: opts.ca });
    this.ws.on("error", () => {});
    this.ws.on("message", (data, isBinary) => {
      const text = String(data);
      try {
        if (isBinary) throw new Error("binary");
        this.events.push(fromJsonString(ChatEventSchema, text));
      } catch {
        this.unparsed.push(text);
      }
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.finished = new Promise((resolve) =>
      this.ws.once("close", (code, reason) => {
        this.closed = { code, reason: String(reason) };
        resolve();
      }),
    );
  }

  of<K extends Kind>(kind: K): ValueOf<K>[] {
    return this.events.filter((e) => e.kind.case === kind).map((e) => e.kind.value) as ValueOf<K>[];
  }

  messages(room?: string) {
    return this.of("message").filter((m) => room === undefined || m.room === room);
  }

  seqs(room: string): number[] {
    return this.messages(room).map((m) => Number(m.seq));
  }

  presence(room: string, user: string, action: PresenceAction) {
    return this.of("presence").filter((p) => p.room === room && p.user === user && p.action === action);
  }

  errors() {
    return this.of("error");
  }

  async until<T>(pick: (c: WsClient) => T, what: string, ms = 5000): Promise<NonNullable<T>> {
    return eventually(
      () => {
        const v = pick(this);
        if (!v && this.closed) throw new Error(`the connection closed (${this.closed.code} ${this.closed.reason}) before ${what}`);
        return v as NonNullable<T>;
      },
      ms,
      what,
    );
  }

  send(req: MessageInitShape<typeof ChatRequestSchema>): void {
    this.ws.send(toJsonString(ChatRequestSchema, create(ChatRequestSchema, req)));
  }

  raw(data: string | Buffer): void {
    this.ws.send(data);
  }

  join(room: string, sinceSeq?: number): void {
    this.send({ kind: { case: "join", value: { room, sinceSeq: sinceSeq === undefined ? undefined : BigInt(sinceSeq) } } });
  }

  say(room: string, text: string, clientMsgId = ""): void {
    this.send({ kind: { case: "send", value: { target: { case: "room", value: room }, text, clientMsgId } } });
  }

  async joined(room: string): Promise<ValueOf<"joined">> {
    return this.until((c) => c.of("joined").find((j) => j.room === room), `joined ${room}`);
  }

  /** Pings and waits for the pong: every request sent before it has been handled. */
  async roundTrip(nonce: string): Promise<void> {
    this.send({ kind: { case: "ping", value: { nonce } } });
    await this.until((c) => c.of("pong").some((p) => p.nonce === nonce), `pong ${nonce}`);
  }

  async close(): Promise<void> {
    if (!this.closed) this.ws.close(1000, "bye");
    await this.finished;
  }
}
