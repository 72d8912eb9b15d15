// Looking for bytes in the files a store wrote: what "gone from storage" is checked against.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** The files under `dir` (recursively) whose bytes contain `text` as UTF-8. */
export function filesContaining(dir: string, text: string): string[] {
  const needle = Buffer.from(text, "utf8");
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesContaining(path, text));
    else if (readFileSync(path).includes(needle)) out.push(path);
  }
  return out;
}
