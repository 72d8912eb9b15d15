// Cross-cutting rules applied to every chat RPC, whatever the protocol.
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Authenticator } from "../core/auth.ts";
import { adminKey, userKey } from "./context.ts";
import { protocolOfHeader } from "./protocol.ts";
import { drainRefusal } from "../core/advice.ts";

/** Services that need a user; health checks and reflection stay open for probes and tooling. */
const AUTHENTICATED = new Set(["chat.v1.ChatService", "chat.ChatService"]);

export function authInterceptor(auth: Authenticator, onFailure?: (err: ConnectError, protocol: string) => void): Interceptor {
  return (next) => async (req) => {
    if (AUTHENTICATED.has(req.service.typeName)) {
      try {
        const who = await auth.identify(req.header);
        req.contextValues.set(userKey, who?.user);
        req.contextValues.set(adminKey, who?.admin === true);
      } catch (err) {
        if (err instanceof ConnectError) onFailure?.(err, protocolOfHeader(req.header));
        throw err;
      }
    }
    return next(req);
  };
}

/** Refuses new calls once the server is draining, so load balancers move clients elsewhere. */
export function drainInterceptor(isDraining: () => boolean): Interceptor {
  return (next) => async (req) => {
    if (isDraining() && req.service.typeName !== "grpc.health.v1.Health") {
      throw drainRefusal();
    }
    return next(req);
  };
}
