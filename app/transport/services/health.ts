// The standard gRPC health protocol (grpc.health.v1.Health), so that load balancers, Kubernetes
// probes and grpc_health_probe can ask this server whether it takes traffic.

import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.ts";

// Readiness lives in its own module, which the server loads before its port opens; this one,
// with the health service's descriptor, only after (server.ts, rpc.ts).
export { createReadiness, type Readiness } from "../readiness.ts";
import type { Readiness } from "../readiness.ts";

export function registerHealth(router: ConnectRouter, readiness: Readiness, services: string[]): void {
  // "" is the server as a whole, which grpc-go also registers by default.
  const known = new Set(["", ...services]);
  const current = () => (readiness.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);

  router.service(Health, {
    check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      }
      return { status: current() };
    },

    list() {
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: current() }])) };
    },

    async *watch(req, ctx) {
      // The spec wants Watch on an unknown name to stay open (the service may appear later) rather
      // than fail like Check does; our set is fixed, so it stays SERVICE_UNKNOWN until the client goes.
      const status = known.has(req.service) ? current : () => ServingStatus.SERVICE_UNKNOWN;

      // A notification only wakes the loop, which then compares the status with the last one sent:
      // a change while we are suspended in a yield is therefore not lost, and, like grpc-go, a slow
      // client gets the latest status instead of a backlog, so memory stays bounded.
      let wake: (() => void) | undefined;
      const poke = () => wake?.();
      const unsubscribe = readiness.onChange(poke);
      ctx.signal.addEventListener("abort", poke);
      try {
        let sent = status();
        yield { status: sent };
        while (!ctx.signal.aborted) {
          if (status() === sent) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          sent = status();
          yield { status: sent };
        }
      } finally {
        // Runs both on abort and when Connect calls return() on the generator mid-yield.
        unsubscribe();
        ctx.signal.removeEventListener("abort", poke);
      }
    },
  });
}
