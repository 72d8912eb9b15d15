// The message filter hook in-process: the core on the in-memory engine asking a real HTTP hook,
// which verifies each request's signature with the Standard Webhooks library and answers accept,
// reject, rewrite, slowly, or with an error; failing open and failing closed.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import type { Server } from "bun";
import { ChatCore } from "../core/chat.ts";
import { createEmbeddedEngine } from "../engine/embedded/index.ts";
import type { Engine } from "../engine/engine.ts";
import { createLogger } from "../log.ts";
import { TEST_LIMITS } from "../../test/support/limits.ts";
import { refusal } from "../../test/support/refusal.ts";
import { httpFilter, type FilterOutcome } from "./filter.ts";
import { newSecret } from "./signing.ts";

const secret = newSecret();
const seen: { kind: string; text: string; verified: boolean }[] = [];
let hook: Server<unknown>;
/** What the hook does with a text: by its first word. */
beforeAll(() => {
  const verifier = new Webhook(secret);
  hook = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      let verified = true;
      try {
        verifier.verify(body, Object.fromEntries(req.headers));
      } catch {
        verified = false;
      }
      const m = JSON.parse(body) as { kind: string; text: string };
      seen.push({ kind: m.kind, text: m.text, verified });
      const [word] = m.text.split(" ");
      if (word === "spam") return Response.json({ action: "reject", reason: "links to that site are not allowed" });
      if (word === "darn") return Response.json({ action: "rewrite", text: m.text.replace("darn", "****") });
      if (word === "slow") await Bun.sleep(300);
      if (word === "broken") return new Response("oops", { status: 500 });
      if (word === "huge") return Response.json({ action: "rewrite", text: "x".repeat(5000) });
      return Response.json({ action: "accept" });
    },
  });
});
afterAll(() => hook.stop(true));

let engine: Engine;
let core: ChatCore;
const outcomes: FilterOutcome[] = [];
async function start(failOpen: boolean): Promise<void> {
  engine = createEmbeddedEngine(":memory:");
  // The room records load in a moment (embedded/index.ts).
  await Bun.sleep(1);
  const filter = httpFilter({ url: `http://127.0.0.1:${hook.port}/filter`, secret, timeoutMs: 100, failOpen }, createLogger("error"), (o) => outcomes.push(o));
  core = new ChatCore({ engine, region: "test", limits: TEST_LIMITS, log: createLogger("error"), filter });
}
afterEach(async () => {
  await core.drain();
  await engine.close();
});
const texts = async () => (await core.history("ann", "r", 0n, 0n, 100)).messages.map((m) => m.text);

test("accept, reject with the hook's reason, rewrite; edits pass it too; every request signed", async () => {
  await start(false);
  await core.send("ann", { room: "r" }, "hello", "");
  expect(await refusal(core.send("ann", { room: "r" }, "spam at example.com", ""))).toBe(
    "PermissionDenied: the message was refused: links to that site are not allowed",
  );
  const rewritten = await core.send("ann", { room: "r" }, "darn it", "");
  expect(rewritten.text).toBe("**** it");
  await core.editMessage({ user: "ann" }, "r", 1n, "darn again", "");
  expect(await refusal(core.editMessage({ user: "ann" }, "r", 1n, "spam again", ""))).toStartWith("PermissionDenied: the message was refused");
  expect(await refusal(core.send("ann", { room: "r" }, "huge please", ""))).toBe("InvalidArgument: text is 5000 bytes; the limit is 4096 bytes of UTF-8");
  expect(await texts()).toEqual(["**** again", "**** it", ""]);
  expect(seen.every((s) => s.verified)).toBe(true);
  expect(seen.filter((s) => s.kind === "edit").map((s) => s.text)).toEqual(["darn again", "spam again"]);
  expect(outcomes.slice(0, 4)).toEqual(["accept", "reject", "rewrite", "rewrite"]);
});

test("failing closed: a hook that is slow or broken refuses the message with unavailable, and nothing is stored", async () => {
  await start(false);
  expect(await refusal(core.send("ann", { room: "r" }, "slow one", ""))).toBe("Unavailable: the message filter is not answering: try again shortly");
  expect(await refusal(core.send("ann", { room: "r" }, "broken one", ""))).toBe("Unavailable: the message filter is not answering: try again shortly");
  expect(await texts()).toEqual([]);
});

test("failing open: a hook that is slow or broken lets the message through as it is", async () => {
  await start(true);
  await core.send("ann", { room: "r" }, "slow one", "");
  await core.send("ann", { room: "r" }, "broken one", "");
  expect(await texts()).toEqual(["slow one", "broken one"]);
  expect(outcomes.slice(-2)).toEqual(["failed_open", "failed_open"]);
});
