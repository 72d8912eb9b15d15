#!/usr/bin/env bun
// The edgechat command. Subcommands live in their own modules.
import { apikeyCommand } from "./apikey.ts";
import { chatCommand } from "./chat.ts";
import { metricsCommand } from "./metrics.ts";
import { simCommand } from "./sim.ts";
import { tokenCommand } from "./token.ts";

const USAGE = `usage: edgechat <command> [options]

commands:
  chat            chat in the terminal (edgechat chat --help)
  token           mint a token for a user with EDGECHAT_JWT_SECRET (edgechat token --user <id> [--ttl 1h])
  sim             the load simulator, interactive or scripted (edgechat sim --help)
  metrics [url]   summarize a sidecar's metrics (default http://127.0.0.1:9091/metrics)
  apikey          make a key for the server API (edgechat apikey --name <id> [--scopes publish,read])

docs/cli.md has examples.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  chat: chatCommand,
  token: tokenCommand,
  sim: simCommand,
  metrics: metricsCommand,
  apikey: apikeyCommand,
};

const [command, ...args] = process.argv.slice(2);
const run = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
if (!run) {
  console.error(USAGE);
  process.exit(command === undefined || command === "help" || command === "--help" ? 0 : 2);
}
try {
  process.exit(await run(args));
} catch (err) {
  console.error(`edgechat ${command}: ${(err as Error).message}`);
  process.exit(1);
}
