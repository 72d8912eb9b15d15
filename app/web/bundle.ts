// Server side of the web page: builds app/web/index.html (and the script and stylesheet it names)
// with Bun's bundler once per process, in memory, on the first request for it; the server then
// serves the result.
// The script and stylesheet get content hashes in their names, so they can be cached for good;
// the page itself is revalidated.
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { CONFIG_META, type ServerConfig } from "./page-config.ts";

export interface WebAsset {
  body: Uint8Array;
  /** The same, gzipped, when that is smaller. */
  gzip?: Uint8Array;
  type: string;
  /** The name has a content hash: cache it for a year. */
  immutable: boolean;
}

export interface WebBundle {
  /** GET / */
  page: WebAsset;
  /** By URL path: /assets/<name>-<hash>.<ext>. */
  assets: Map<string, WebAsset>;
}

export const ASSET_PREFIX = "/assets/";
// In a production bundle (scripts/build.ts) this code is not next to the page's sources: the build
// defines where they are, relative to the bundle, which is the process's entrypoint (Bun.main). Not
// import.meta.dir there: in a CommonJS bundle Bun replaces it with the directory at build time.
declare const EDGECHAT_WEB_DIR: string | undefined;
const WEB_DIR = typeof EDGECHAT_WEB_DIR === "string" ? join(dirname(Bun.main), EDGECHAT_WEB_DIR) : import.meta.dir;
const ENTRY = join(WEB_DIR, "index.html");

let built: Promise<WebBundle> | undefined;

/** The bundle, built on the first call and kept for the life of the process. */
export function webBundle(): Promise<WebBundle> {
  built ??= buildWebBundle();
  return built;
}

export async function buildWebBundle(): Promise<WebBundle> {
  const result = await Bun.build({
    entrypoints: [ENTRY],
    target: "browser",
    minify: true,
    sourcemap: "linked",
    publicPath: ASSET_PREFIX,
    naming: { entry: "[name]-[hash].[ext]", chunk: "[name]-[hash].[ext]", asset: "[name]-[hash].[ext]" },
  });
  if (!result.success) {
    throw new Error(`the web page did not build: ${result.logs.map((l) => String(l.message ?? l)).join("; ")}`);
  }
  let page: WebAsset | undefined;
  const assets = new Map<string, WebAsset>();
  for (const out of result.outputs) {
    const name = out.path.replace(/^\.\//, "");
    const body = new Uint8Array(await out.arrayBuffer());
    const isPage = name.endsWith(".html");
    const asset: WebAsset = { body, type: out.type, immutable: !isPage };
    if (body.byteLength > 1024) {
      const gz = gzipSync(body, { level: 9 });
      if (gz.byteLength < body.byteLength) asset.gzip = gz;
    }
    if (isPage) page = asset;
    else assets.set(ASSET_PREFIX + name, asset);
  }
  if (!page) throw new Error("the web page did not build: no HTML in the output");
  return { page, assets };
}

/**
 * The page with the server's config in a meta tag, so that it can show the sign-in card on its
 * first paint instead of waiting for /config.json. A meta tag, not an inline script: the page's
 * CSP allows no inline script.
 */
export function pageWithConfig(page: WebAsset, config: ServerConfig): WebAsset {
  const attr = JSON.stringify(config).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const html = new TextDecoder().decode(page.body);
  const at = html.indexOf("</head>");
  if (at < 0) throw new Error("the web page has no </head>");
  const body = new TextEncoder().encode(`${html.slice(0, at)}<meta name="${CONFIG_META}" content="${attr}">${html.slice(at)}`);
  const gzip = page.gzip ? gzipSync(body, { level: 9 }) : undefined;
  return { ...page, body, gzip };
}
