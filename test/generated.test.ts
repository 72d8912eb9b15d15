// The generated protobuf code is committed; this fails when it no longer matches proto/.
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ROOT } from "./support/server.ts";

const bin = join(ROOT, "node_modules/.bin");
const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test("app/gen matches what buf generates from proto/", () => {
  const out = mkdtempSync(join(tmpdir(), "edgechat-gen-"));
  const run = Bun.spawnSync([join(bin, "buf"), "generate", "-o", out], { cwd: ROOT, env });
  expect(run.stderr.toString()).toBe("");
  expect(run.exitCode).toBe(0);
  const fresh = join(out, "app/gen");
  const committed = join(ROOT, "app/gen");
  const names = (d: string) =>
    files(d)
      .map((f) => relative(d, f))
      .sort();
  expect(names(committed)).toEqual(names(fresh));
  for (const name of names(fresh)) {
    expect(readFileSync(join(committed, name), "utf8"), `${name} is stale: run npm run generate`).toBe(readFileSync(join(fresh, name), "utf8"));
  }
});

test("buf lint passes on proto/", () => {
  const run = Bun.spawnSync([join(bin, "buf"), "lint", "proto"], { cwd: ROOT, env });
  expect(run.stdout.toString() + run.stderr.toString()).toBe("");
  expect(run.exitCode).toBe(0);
});
