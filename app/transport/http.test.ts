// The plain HTTP routes in-process, through Hono's app.request(): probes, the page's config, the
// typing route's rules and errors. The page itself in a browser is test/e2e/web.test.ts.
import { afterEach, expect, test } from "bun:test";
import type { ChatEvent } from "../gen/chat/v1/chat_pb.ts";
import { createAuthenticator } from "../core/auth.ts";
import { ChatCore } from "../core/chat.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import { createLogger } from "../log.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { eventually } from "../../test/support/wait.ts";
import { createHttpApp } from "./http.ts";

const cores: ChatCore[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.drain();
});

/** The routes over a real core on the in-memory engine; `inLobby` have a stream in "lobby". */
async function app(opts: { ready?: boolean; inLobby?: string[] } = {}) {
  const engine = createEmbeddedEngine(":memory:");
  const core = new ChatCore({ engine, region: "ams", limits: TEST_LIMITS, log: createLogger("error") });
  cores.push(core);
  for (const user of opts.inLobby ?? []) await core.join(await core.open(user, "test"), "lobby");
  const published: [string, ChatEvent][] = [];
  for (const topic of ["lobby", "dm:amy:zed"]) await engine.bus.subscribe(topic, (e) => e.kind.case === "typing" && published.push([topic, e]));
  const http = createHttpApp({
    isReady: () => opts.ready ?? true,
    region: "ams",
    web: { auth: createAuthenticator({}), core, heartbeatSeconds: 7 },
  });
  return { http, published, core };
}

const typing = (http: Awaited<ReturnType<typeof app>>["http"], user: string | undefined, body: string) =>
  http.request("/typing", { method: "POST", headers: { "content-type": "application/json", ...(user ? { "x-user": user } : {}) }, body });

test("/healthz is always ok; /readyz follows readiness and names the region", async () => {
  expect(await (await (await app({ ready: false })).http.request("/healthz")).json()).toEqual({ status: "ok" });
  const ready = await (await app({ ready: true })).http.request("/readyz");
  expect([ready.status, await ready.json()]).toEqual([200, { status: "ready", region: "ams" }]);
  const not = await (await app({ ready: false })).http.request("/readyz");
  expect([not.status, await not.json()]).toEqual([503, { status: "not ready" }]);
});

test("/config.json tells the page how to sign in, its region and the heartbeat; unknown paths are a JSON 404", async () => {
  const { http } = await app();
  const config = await http.request("/config.json");
  expect(config.headers.get("cache-control")).toBe("no-cache");
  expect(await config.json()).toEqual({ auth: "dev", region: "ams", heartbeat_seconds: 7 });
  const missing = await http.request("/nope");
  expect([missing.status, await missing.json()]).toEqual([404, { error: "no route for GET /nope" }]);
});

test("/typing publishes a typing event for a member, once a second at most", async () => {
  const { http, published } = await app({ inLobby: ["ann"] });
  expect((await typing(http, "ann", '{"room":"lobby"}')).status).toBe(204);
  expect((await typing(http, "ann", '{"room":"lobby"}')).status).toBe(204);
  await eventually(() => published.length > 0, 2000, "the typing event", 2);
  expect(published.map(([topic, e]) => [topic, e.kind.case, e.kind.case === "typing" ? e.kind.value.user : ""])).toEqual([["lobby", "typing", "ann"]]);
});

test("/typing refuses with Connect's error statuses and bodies: no user, a bad room, another pair's DM, not in the room, too big", async () => {
  const { http, published, core } = await app({ inLobby: ["ann"] });
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
  // A muted user is refused here as on a stream: the rule is the core's, for every path.
  await core.rooms.create({ user: "olga" }, "town", 1, "", "");
  await core.join(await core.open("ann", "test"), "town");
  await core.rooms.mute({ user: "olga" }, "town", "ann", undefined);
  expect(await answer(await typing(http, "ann", '{"room":"town"}'))).toEqual([
    403,
    { code: "permission_denied", message: 'you are muted in room "town" for good' },
  ]);
  expect(published).toEqual([]);
});
