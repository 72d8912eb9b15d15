// The plain HTTP routes, served by Hono behind the RPC routes on the same port.
import { Hono } from "hono";

export interface HttpDeps {
  isReady: () => boolean;
  region: string;
}

export function createHttpApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) =>
    deps.isReady() ? c.json({ status: "ready", region: deps.region }) : c.json({ status: "not ready" }, 503),
  );
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  return app;
}
