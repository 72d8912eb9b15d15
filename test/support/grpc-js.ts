// Clients built the way a third-party gRPC user would: @grpc/grpc-js with the .proto files loaded at
// runtime by @grpc/proto-loader, no generated code. Messages are plain objects with the proto field
// names (keepCase), 64-bit integers as decimal strings, enums as their names, and every oneof's
// chosen member named by a virtual field (e.g. `event.kind === "message"`).
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ROOT } from "./server.ts";
import { eventually } from "./wait.ts";

export { grpc };

const definition = protoLoader.loadSync(
  ["chat/v1/chat.proto", "chat/v1/server.proto", "chat/chat.proto", "grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto"],
  {
    // google/protobuf/timestamp.proto is not under proto/: protobufjs resolves it from its bundled
    // well-known types.
    includeDirs: [join(ROOT, "proto")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);
const pkg = grpc.loadPackageDefinition(definition) as any;

type Ctor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => any;
export const services = {
  chatV1: pkg.chat.v1.ChatService as Ctor,
  serverV1: pkg.chat.v1.ServerService as Ctor,
  legacy: pkg.chat.ChatService as Ctor,
  health: pkg.grpc.health.v1.Health as Ctor,
  reflection: pkg.grpc.reflection.v1.ServerReflection as Ctor,
};

/** Every client made by `connect`, so that a test file can close them all at the end. */
const open = new Set<grpc.Client>();

/** A client of `service` on the server at `port`, over cleartext HTTP/2. */
export function connect(service: Ctor, port: number): any {
  const client = new service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  open.add(client);
  return client;
}

export function closeAllClients(): void {
  for (const c of open) c.close();
  open.clear();
}

/** Metadata naming the caller, as dev mode reads it. */
export function asUser(user?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (user) md.set("x-user", user);
  return md;
}

/**
 * Metadata carrying a deadline that only the server knows: grpc-js sets grpc-timeout itself only
 * for calls with a deadline, and otherwise sends this one as is. The call's status then comes from
 * the server alone, not from whichever of the two timers fires first.
 */
export function withServerDeadline(md: grpc.Metadata, ms: number): grpc.Metadata {
  md.set("grpc-timeout", `${ms}m`);
  return md;
}

/** A unary call as a promise; rejects with the grpc-js ServiceError (which has `code`). */
export function unary<Res = any>(client: any, method: string, request: object, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, options, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
  });
}

/** The status a rejected call ended with; fails if the call succeeded. */
export async function failure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("the call succeeded; expected it to fail");
}

/** Collects what a streaming call receives; `until` waits for something matching a predicate. */
export class CallReader<T = any> {
  readonly items: T[] = [];
  /** Set once the call ended, with the status it ended with (OK included). */
  status: grpc.StatusObject | undefined;
  readonly finished: Promise<grpc.StatusObject>;

  constructor(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<any, T>) {
    call.on("data", (item: T) => this.items.push(item));
    // grpc-js emits "error" for a non-OK status, then "status" in every case; without an "error"
    // listener the error would be thrown.
    call.on("error", () => {});
    this.finished = new Promise((resolve) => {
      call.on("status", (status: grpc.StatusObject) => {
        this.status = status;
        resolve(status);
      });
    });
  }

  get done(): boolean {
    return this.status !== undefined;
  }

  /** Resolves with `pick`'s first truthy result; fails if the call ends first or after `ms`. */
  async until<V>(pick: (r: this) => V, what = "item", ms = 5000): Promise<Exclude<V, false | 0 | "" | null | undefined>> {
    return eventually(
      () => {
        const v = pick(this);
        if (!v && this.done) {
          throw new Error(`the call ended (${grpc.status[this.status!.code]}: ${this.status!.details}) before ${what}`);
        }
        return v;
      },
      ms,
      what,
    ) as Promise<Exclude<V, false | 0 | "" | null | undefined>>;
  }
}

/** ChatEvent readers: events of one kind, and messages of one room. */
export class EventReader extends CallReader {
  of(kind: string): any[] {
    return this.items.filter((e) => e.kind === kind).map((e) => e[kind]);
  }

  messages(room?: string): any[] {
    return this.of("message").filter((m) => room === undefined || m.room === room);
  }

  presence(room: string, user: string, action: "PRESENCE_ACTION_JOINED" | "PRESENCE_ACTION_LEFT"): any[] {
    return this.of("presence").filter((p) => p.room === room && p.user === user && p.action === action);
  }
}

/** A chat.v1 Chat stream as `user` (a user id, or the call's whole metadata): `send` writes a ChatRequest, `reader` collects the events. */
export function openChat(client: any, user: string | grpc.Metadata | undefined, options: grpc.CallOptions = {}) {
  const md = user instanceof grpc.Metadata ? user : asUser(user);
  const call: grpc.ClientDuplexStream<object, any> = client.Chat(md, options);
  const reader = new EventReader(call);
  return {
    call,
    reader,
    send: (request: object) => void call.write(request),
    join: (room: string, since_seq?: number) => void call.write({ join: since_seq === undefined ? { room } : { room, since_seq: String(since_seq) } }),
    leave: (room: string) => void call.write({ leave: { room } }),
    say: (target: { room: string } | { to_user: string }, text: string, client_msg_id = "") => void call.write({ send: { ...target, text, client_msg_id } }),
    ping: (nonce: string) => void call.write({ ping: { nonce } }),
    /** Half-closes: the server ends the stream with OK once its queue is written. */
    end: () => call.end(),
    cancel: () => call.cancel(),
  };
}

/** A Subscribe server stream as `user` (a user id, or the call's whole metadata). */
export function openSubscribe(client: any, user: string | grpc.Metadata, request: object, options: grpc.CallOptions = {}) {
  const md = typeof user === "string" ? asUser(user) : user;
  const call: grpc.ClientReadableStream<any> = client.Subscribe(request, md, options);
  return { call, reader: new EventReader(call), cancel: () => call.cancel() };
}

export interface ChatMessage {
  user: string;
  target_id: string;
  message: string;
  timestamp: string;
}

/** An old-API chat.ChatService/ChatStream client: `say` writes a line, `reader` collects ChatMessages. */
export function openLegacy(client: any, first: Partial<ChatMessage>, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}) {
  const call: grpc.ClientDuplexStream<Partial<ChatMessage>, ChatMessage> = client.ChatStream(metadata, options);
  const reader = new LegacyReader(call);
  call.write(first);
  return {
    call,
    reader,
    say: (message: string) => void call.write({ message }),
    end: () => call.end(),
    cancel: () => call.cancel(),
  };
}

export class LegacyReader extends CallReader<ChatMessage> {
  from(user: string): ChatMessage[] {
    return this.items.filter((m) => m.user === user);
  }
}
