// The plain HTTP routes in-process, through Hono's app.request(): probes, the page's config, the
// typing route's rules and errors. The page itself in a browser is test/e2e/web.test.ts.
import { expect, test } from "bun:test";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { createAuthenticator } from "../core/auth.ts";
import { createHttpApp } from "./http.ts";

function app(opts: { ready?: boolean; online?: (user: string, room: string) => boolean } = {}) {
  const published: [string, ChatEvent][] = [];
  const http = createHttpApp({
    isReady: () => opts.ready ?? true,
    region: "ams",
    web: {
      auth: createAuthenticator({}),
      core: { isOnline: async (user, room) => opts.online?.(user, room) ?? true },
      bus: {
        publish: async (topic, event) => {
          published.push([topic, event]);
        },
      },
      heartbeatSeconds: 7,
    },
  });
  return { http, published };
}

const typing = (http: ReturnType<typeof app>["http"], user: string | undefined, body: string) =>
  http.request("/typing", { method: "POST", headers: { "content-type": "application/json", ...(user ? { "x-user": user } : {}) }, body });

test("/healthz is always ok; /readyz follows readiness and names the region", async () => {
  expect(await (await app({ ready: false }).http.request("/healthz")).json()).toEqual({ status: "ok" });
  const ready = await app({ ready: true }).http.request("/readyz");
  expect([ready.status, await ready.json()]).toEqual([200, { status: "ready", region: "ams" }]);
  const not = await app({ ready: false }).http.request("/readyz");
  expect([not.status, await not.json()]).toEqual([503, { status: "not ready" }]);
});

test("/config.json tells the page how to sign in, its region and the heartbeat; unknown paths are a JSON 404", async () => {
  const { http } = app();
  const config = await http.request("/config.json");
  expect(config.headers.get("cache-control")).toBe("no-cache");
  expect(await config.json()).toEqual({ auth: "dev", region: "ams", heartbeat_seconds: 7 });
  const missing = await http.request("/nope");
  expect([missing.status, await missing.json()]).toEqual([404, { error: "no route for GET /nope" }]);
});

test("/typing publishes a typing event for a member, once a second at most", async () => {
  const { http, published } = app();
  expect((await typing(http, "ann", '{"room":"lobby"}')).status).toBe(204);
  expect((await typing(http, "ann", '{"room":"lobby"}')).status).toBe(204);
  expect(published.map(([topic, e]) => [topic, e.kind.case, e.kind.case === "typing" ? e.kind.value.user : ""])).toEqual([["lobby", "typing", "ann"]]);
});

test("/typing refuses with Connect's error statuses and bodies: no user, a bad room, another pair's DM, not in the room, too big", async () => {
  const { http, published } = app({ online: (user) => user !== "zed" });
  const answer = async (r: Response) => [r.status, await r.json()];
  expect(await answer(await typing(http, undefined, '{"room":"lobby"}'))).toEqual([
    401,
    { code: "unauthenticated", message: expect.stringMatching(/^no user/) },
  ]);
  expect(await answer(await typing(http, "ann", '{"room":"bad room!"}'))).toEqual([
    400,
    { code: "invalid_argument", message: 'room name must be 1 to 64 characters of A-Z a-z 0-9 _ . : - (got "bad room!")' },
  ]);
  expect(await answer(await typing(http, "ann", '{"room":"dm:amy:zed"}'))).toEqual([
    403,
    { code: "permission_denied", message: 'room "dm:amy:zed" is a direct conversation between two other users' },
  ]);
  // Connect maps failed_precondition to 400.
  expect(await answer(await typing(http, "zed", '{"room":"lobby"}'))).toEqual([
    400,
    { code: "failed_precondition", message: 'join room "lobby" before typing in it' },
  ]);
  expect(await answer(await typing(http, "ann", JSON.stringify({ room: "x".repeat(2000) })))).toEqual([
    413,
    { code: "invalid_argument", message: "request body too large" },
  ]);
  expect(published).toEqual([]);
});
