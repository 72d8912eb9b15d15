// The plain HTTP routes, served by Hono behind the RPC routes on the same port: probes, and the
// web chat page (app/web) with what it needs besides the RPCs.
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { bodyLimit } from "hono/body-limit";
import { ConnectError } from "@connectrpc/connect";
import type { Authenticator } from "../core/auth.ts";
import type { ChatCore } from "../core/chat.ts";
import { codeName } from "../rules/codes.ts";
import { codeToHttpStatus } from "./connect-internals.ts";
import { ASSET_PREFIX, pageWithConfig, webBundle, type WebAsset } from "../web/bundle.ts";
import { noUserError } from "../core/auth.ts";

export interface HttpDeps {
  isReady: () => boolean;
  region: string;
  /** The web chat page at `/`; without it the page is not served. */
  web?: WebDeps;
}

export interface WebDeps {
  auth: Pick<Authenticator, "mode" | "authenticate">;
  /** Takes the page's typing notices, with the rules of a stream's. */
  core: Pick<ChatCore, "typingFor">;
  /** EDGECHAT_HEARTBEAT_SECONDS: the page takes a stream that is silent much longer for dead. */
  heartbeatSeconds?: number;
}

export function createHttpApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => (deps.isReady() ? c.json({ status: "ready", region: deps.region }) : c.json({ status: "not ready" }, 503)));
  if (deps.web) mountWebPage(app, deps.web, deps.region);
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  return app;
}

const PAGE_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function mountWebPage(app: Hono, web: WebDeps, region: string): void {
  // What the page needs to know before its first paint: in the page itself, and at /config.json.
  const config = { auth: web.auth.mode, region, heartbeat_seconds: web.heartbeatSeconds ?? 25 };
  // Built on the first visit, not at start: Bun.build costs the cold start tens of milliseconds
  // that no RPC needs. A failure shows on the page's routes.
  let page: Promise<WebAsset> | undefined;
  app.get("/", async (c) => {
    page ??= webBundle().then((bundle) => pageWithConfig(bundle.page, config));
    const asset = await page.catch((err: Error) => err);
    if (asset instanceof Error) return c.text(`the web page is unavailable: ${asset.message}`, 500);
    return serveAsset(c, asset, PAGE_HEADERS);
  });

  app.get(`${ASSET_PREFIX}*`, async (c) => {
    const bundle = await webBundle().catch(() => undefined);
    const asset = bundle?.assets.get(c.req.path);
    if (!asset) return c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);
    return serveAsset(c, asset, { "x-content-type-options": "nosniff" });
  });

  app.get("/config.json", (c) => {
    c.header("cache-control", "no-cache");
    return c.json(config);
  });

  app.post("/typing", bodyLimit({ maxSize: 1024, onError: (c) => c.json({ code: "invalid_argument", message: "request body too large" }, 413) }), async (c) => {
    try {
      const user = await web.auth.authenticate(c.req.raw.headers);
      if (!user) throw noUserError();
      const body = (await c.req.json().catch(() => undefined)) as { room?: unknown } | undefined;
      await web.core.typingFor(user, typeof body?.room === "string" ? body.room : "");
      return c.body(null, 204);
    } catch (err) {
      const ce = ConnectError.from(err);
      // A Connect unary error, status and body, so that a Connect client reads it as one.
      return c.json({ code: codeName(ce.code), message: ce.rawMessage }, codeToHttpStatus(ce.code) as ContentfulStatusCode);
    }
  });
}

function serveAsset(c: Context, asset: WebAsset, extra: Record<string, string>) {
  for (const [k, v] of Object.entries(extra)) c.header(k, v);
  c.header("content-type", asset.type);
  c.header("cache-control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  c.header("vary", "accept-encoding");
  const gzip = asset.gzip && /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
  if (gzip) c.header("content-encoding", "gzip");
  return c.body((gzip ? asset.gzip : asset.body) as Uint8Array<ArrayBuffer>);
}
