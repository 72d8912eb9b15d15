// The production bundle: `bun run build` writes dist/, one minified file per entrypoint, laid out
// like the sources (dist/app/supervisor.js, dist/app/main.js, dist/sidecar/main.js). Running it
// skips transpiling and resolving ~400 modules at every start: the cold start is what it buys.
// The sources stay runnable as they are (npm start needs no build).
//
// Three things the bundles find next to them rather than inside: the web page's sources, which the
// server bundles for the browser on the first visit (app/web/bundle.ts, told where they are by
// EDGECHAT_WEB_DIR), the SQLite writer thread's bundle (EDGECHAT_WRITER_THREAD), and the
// sidecar's default relabel.yaml (copied).
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const OUT = join(ROOT, "dist");

// The SQLite writer thread's program is an entry point of its own: a worker needs a file to start.
const WRITER_THREAD = "app/engine/embedded/writer-thread.ts";
const entries = ["app/main.ts", "app/supervisor.ts", "sidecar/main.ts", WRITER_THREAD];
// The server also ships as bytecode (main.jsc next to main.js, which Bun loads in its place): no
// parsing at start. Bun compiles to bytecode only CommonJS, so that bundle is CommonJS, and
// app/main.ts has no top-level await.
const bytecode = new Set(["app/main.ts"]);

rmSync(OUT, { recursive: true, force: true });
for (const entry of entries) {
  const outdir = join(OUT, entry, "..");
  const result = await Bun.build({
    entrypoints: [join(ROOT, entry)],
    outdir,
    target: "bun",
    format: bytecode.has(entry) ? "cjs" : "esm",
    bytecode: bytecode.has(entry),
    minify: true,
    sourcemap: "linked",
    // The NATS engine stays behind its dynamic import: inlined, but evaluated only when imported.
    define: {
      EDGECHAT_WEB_DIR: JSON.stringify(relative(outdir, join(ROOT, "app/web"))),
      EDGECHAT_WRITER_THREAD: JSON.stringify(relative(outdir, join(OUT, WRITER_THREAD.replace(/\.ts$/, ".js")))),
    },
  });
  if (!result.success) {
    for (const l of result.logs) console.error(l);
    process.exit(1);
  }
  for (const o of result.outputs) if (o.kind === "entry-point") console.log(`${relative(ROOT, o.path)}  ${(o.size / 1024).toFixed(0)} KB`);
}
mkdirSync(join(OUT, "sidecar"), { recursive: true });
copyFileSync(join(ROOT, "sidecar/relabel.yaml"), join(OUT, "sidecar/relabel.yaml"));
