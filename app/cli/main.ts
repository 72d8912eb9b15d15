#!/usr/bin/env bun
// The edgechat command. Subcommands live in their own modules.
import { metricsCommand } from "./metrics.ts";

const USAGE = `usage: edgechat <command>

commands:
  metrics [url]   summarize a sidecar's metrics (default http://127.0.0.1:9091/metrics)`;

const [command, ...args] = process.argv.slice(2);
try {
  switch (command) {
    case "metrics":
      process.exit(await metricsCommand(args));
    default:
      console.error(USAGE);
      process.exit(command === undefined || command === "help" || command === "--help" ? 0 : 2);
  }
} catch (err) {
  console.error(`edgechat ${command}: ${(err as Error).message}`);
  process.exit(1);
}
