// The layering of docs/architecture.md ("Dependencies"), checked on every import of every source
// file, so that it stays true by itself: a new import across a boundary fails here, naming the
// file, the import and the rule. Tests may reach further (the core's tests run on the embedded
// engine); the rules are for what ships.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");

interface Rule {
  /** Source files under this folder (relative to the repository)... */
  from: string;
  /** ...may not import files under these folders... */
  not: string[];
  /** ...except under these. */
  except?: string[];
  why: string;
}

const RULES: Rule[] = [
  {
    from: "app/rules",
    not: ["app/"],
    except: ["app/gen/"],
    why: "the shared rules import nothing of the app but its generated message types, so that every layer (the web page too) can use them",
  },
  {
    from: "app/core",
    not: ["app/transport", "app/engine/embedded", "app/engine/nats", "app/cli", "app/web", "app/metrics", "app/server.ts", "sidecar"],
    why: "the core knows the Engine interface and the rules, never a transport or an engine implementation",
  },
  {
    from: "app/engine",
    not: ["app/core", "app/transport", "app/cli", "app/web", "app/metrics", "app/server.ts", "sidecar"],
    why: "an engine stores and carries events; it knows nothing of the chat logic above it",
  },
  { from: "app/engine/embedded", not: ["app/engine/nats"], why: "the engines are siblings behind one interface" },
  { from: "app/engine/nats", not: ["app/engine/embedded"], why: "the engines are siblings behind one interface" },
  {
    from: "app/transport",
    not: ["app/engine/embedded", "app/engine/nats", "app/cli", "app/web/main.ts", "sidecar"],
    why: "transports reach the engine through the core; server.ts chooses the engine",
  },
  {
    from: "app/web",
    not: ["app/core", "app/transport", "app/engine", "app/cli", "app/metrics", "sidecar"],
    why: "the web page is a client in the browser: the generated code and the rules only",
  },
  {
    from: "app/cli",
    not: ["app/core/chat.ts", "app/core/session.ts", "app/transport", "app/engine", "app/web"],
    why: "the CLI is a client: it talks to a server, it does not embed one",
  },
  { from: "sidecar", not: ["app/"], why: "the sidecar is its own process and imports nothing from the server" },
];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name) && !/\.test\.ts$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter((f) => !f.startsWith("app/gen/"));
}

/** Every relative import (static, dynamic, export-from) of a file, resolved against the repository. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) => relative(ROOT, resolve(dirname(join(ROOT, file)), s)));
}

const under = (path: string, prefix: string) => (prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix || path.startsWith(prefix + "/"));

test("every import follows the layering of docs/architecture.md", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const rule of RULES) {
    for (const file of sources(rule.from)) {
      for (const target of importsOf(file)) {
        checked++;
        const hit = rule.not.find((n) => under(target, n)) && !rule.except?.some((e) => under(target, e));
        if (hit) broken.push(`${file} imports ${target}: ${rule.why}`);
      }
    }
  }
  expect(broken).toEqual([]);
  // The check sees the imports it means to: hundreds of them, not none.
  expect(checked).toBeGreaterThan(200);
});

test("the check itself: an import across a boundary is caught, one within is not", () => {
  const core = RULES.find((r) => r.from === "app/core")!;
  expect(core.not.some((n) => under("app/transport/direct.ts", n))).toBe(true);
  expect(core.not.some((n) => under("app/engine/engine.ts", n))).toBe(false);
  expect(core.not.some((n) => under("app/rules/names.ts", n))).toBe(false);
  expect(importsOf("app/core/chat.ts")).toContain("app/rules/names.ts");
  expect(importsOf("app/server.ts")).toContain("app/engine/nats/index.ts");
});
