// The server metrics of go-grpc-prometheus, with its names, labels and help texts, so dashboards
// built for Go gRPC services read edgechat unchanged. One interceptor counts every protocol: a
// Connect or gRPC-Web call is an RPC like a gRPC one.
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, type Registry } from "./prom.ts";
import { FastHistogram, type HistogramChild } from "./fast-histogram.ts";

const LABELS = ["grpc_type", "grpc_service", "grpc_method"] as const;
type Labels = Record<(typeof LABELS)[number], string>;

const GRPC_TYPE: Record<string, string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

/** One call's counters, for a transport that serves a call without Connect's interceptors. */
export interface CallMetrics {
  received(n?: number): void;
  sent(n?: number): void;
  /** The call's outcome as grpc-go spells its code; only the first call counts. */
  finish(code: string): void;
}

export interface GrpcServerMetrics {
  interceptor: Interceptor;
  /** Starts counting a call; `kind` is the method kind as protobuf-es names it ("server_streaming"). */
  call(service: string, method: string, kind: string): CallMetrics;
  /**
   * Creates every method's series at zero, as go-grpc-prometheus's InitializeMetrics does, so that
   * the first error of a kind is an increase Prometheus can see rather than a new series.
   */
  initialize(services: DescService[]): void;
}

const CODES = ["OK", ...Object.keys(Code).filter((k) => Number.isNaN(Number(k)))];

/** One call: a small object with its methods on the prototype, not closures per call. */
class Call implements CallMetrics {
  private readonly start = performance.now();
  private finished = false;

  constructor(private readonly m: MethodCounts) {
    m.started++;
  }

  received(n = 1): void {
    this.m.received += n;
  }

  sent(n = 1): void {
    this.m.sent += n;
  }

  finish(code: string): void {
    if (this.finished) return;
    this.finished = true;
    this.m.handled.set(code, (this.m.handled.get(code) ?? 0) + 1);
    this.m.seconds.observe((performance.now() - this.start) / 1000);
  }
}

/** One method's counts since the last scrape, handed to prom-client when it collects. */
interface MethodCounts {
  labels: Labels;
  started: number;
  received: number;
  sent: number;
  handled: Map<string, number>;
  seconds: HistogramChild;
}

export function grpcServerMetrics(registry: Registry): GrpcServerMetrics {
  // Calls count into plain numbers per method; prom-client gets them at scrape time. Its inc()
  // validates and hashes the labels each time, and a Send made five such calls (measured: a few
  // per cent of the server's time on the fan-out benchmark).
  const methods = new Map<string, MethodCounts>();
  const fold = (field: "started" | "received" | "sent") =>
    function (this: Counter) {
      for (const m of methods.values()) {
        if (m[field] === 0) continue;
        this.inc(m.labels, m[field]);
        m[field] = 0;
      }
    };
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: LABELS,
    registers: [registry],
    collect: fold("started"),
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...LABELS, "grpc_code"],
    registers: [registry],
    collect() {
      for (const m of methods.values()) {
        for (const [grpc_code, n] of m.handled) this.inc({ ...m.labels, grpc_code }, n);
        m.handled.clear();
      }
    },
  });
  const received = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: LABELS,
    registers: [registry],
    collect: fold("received"),
  });
  const sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: LABELS,
    registers: [registry],
    collect: fold("sent"),
  });
  const seconds = new FastHistogram(
    "grpc_server_handling_seconds",
    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    // prometheus.DefBuckets, as go-grpc-prometheus uses.
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
    LABELS,
  );

  const countsOf = (service: string, method: string, kind: string): MethodCounts => {
    const key = `${service}/${method}`;
    let m = methods.get(key);
    if (!m) {
      const labels: Labels = { grpc_type: GRPC_TYPE[kind], grpc_service: service, grpc_method: method };
      m = { labels, started: 0, received: 0, sent: 0, handled: new Map(), seconds: seconds.child(labels) };
      methods.set(key, m);
    }
    return m;
  };

  const initialize = (services: DescService[]) => {
    for (const service of services) {
      for (const method of service.methods) {
        const { labels } = countsOf(service.typeName, method.name, method.methodKind);
        started.inc(labels, 0);
        received.inc(labels, 0);
        sent.inc(labels, 0);
        for (const grpc_code of CODES) handled.inc({ ...labels, grpc_code }, 0);
      }
    }
  };

  const call = (service: string, method: string, kind: string): CallMetrics => new Call(countsOf(service, method, kind));

  const interceptor: Interceptor = (next) => async (req) => {
    const m = call(req.service.typeName, req.method.name, req.method.methodKind);
    const input = req.stream ? countEach(req.message, () => m.received()) : req.message;
    if (!req.stream) m.received();
    try {
      const res = await next({ ...req, message: input } as typeof req);
      if (!res.stream) {
        m.sent();
        m.finish("OK");
        return res;
      }
      return {
        ...res,
        message: watchStream(
          res.message,
          () => m.sent(),
          (code) => m.finish(code),
        ),
      };
    } catch (err) {
      m.finish(goCode(err));
      throw err;
    }
  };
  return { interceptor, initialize, call };
}

/** The code as grpc-go spells it: OK, InvalidArgument, ... (Connect's Code names match Go's). */
export function goCode(err: unknown): string {
  if (err === undefined) return "OK";
  return Code[ConnectError.from(err).code] ?? "Unknown";
}

async function* countEach<T>(it: AsyncIterable<T>, each: () => void): AsyncIterable<T> {
  for await (const m of it) {
    each();
    yield m;
  }
}

async function* watchStream<T>(it: AsyncIterable<T>, each: () => void, finish: (code: string) => void): AsyncIterable<T> {
  try {
    for await (const m of it) {
      each();
      yield m;
    }
    finish("OK");
  } catch (err) {
    finish(goCode(err));
    throw err;
  } finally {
    // Left early: the client went away before the stream ended.
    finish("Canceled");
  }
}
