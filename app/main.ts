// The server process: config from the environment, then serve until SIGINT or SIGTERM.
// No top-level await: the production bundle of this file is CommonJS with bytecode (scripts/build.ts).
import { loadConfig, type Config } from "./config.ts";
import { createLogger } from "./log.ts";
import { startServer } from "./server.ts";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    createLogger("error", { svc: "edgechat" }).error("bad configuration", { err });
    process.exit(1);
  }
  const log = createLogger(config.logLevel, { svc: "edgechat" });

  try {
    const server = await startServer(config, log);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("shutting down", { signal, drain_seconds: config.drainSeconds });
      const deadline = config.drainSeconds * 1000;
      // Whatever happens, exit before the platform's kill timeout.
      setTimeout(() => {
        log.warn("drain deadline passed; exiting");
        process.exit(0);
      }, deadline).unref();
      await server.drain(deadline);
      process.exit(0);
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
  } catch (err) {
    log.error("cannot start", { err });
    process.exit(1);
  }
}

void main();
