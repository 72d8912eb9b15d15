// Both engines for the in-process tests of the core: the embedded one in memory, and the NATS one
// on a real nats-server started once per test file, wiped before each engine.
import { afterAll } from "bun:test";
import { loadConfig } from "../../app/config.ts";
import type { Engine } from "../../app/engine/engine.ts";
import { createEmbeddedEngine } from "../../app/engine/embedded/index.ts";
import { createNatsEngine } from "../../app/engine/nats/index.ts";
import { createLogger } from "../../app/log.ts";
import { startNats, wipeJetStream } from "./nats.ts";

/** [name, factory] for each engine; call at the top level of a test file (it starts nats-server). */
export async function bothEngines(): Promise<[string, () => Promise<Engine>][]> {
  const nats = await startNats();
  afterAll(() => nats.stop());
  return [
    ["embedded", async () => createEmbeddedEngine(":memory:")],
    [
      "nats",
      async () => {
        await wipeJetStream(nats.urls);
        const e = createNatsEngine(loadConfig({ EDGECHAT_NATS_URL: nats.urls, EDGECHAT_REGION: "test" }), createLogger("error"));
        await e.ready();
        return e;
      },
    ],
  ];
}
