// A real browser for the web page's tests: Debian's chromium (apt-get install -y chromium), driven
// by playwright-core. Playwright's own browser downloads are not used.
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.EDGECHAT_CHROMIUM || "/usr/bin/chromium";

/** The flags the machine needs: no sandbox as root, no GPU, and no calls home (the network is closed). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/** The Debian packages this needs, for `apt-get install`. */
export const PACKAGES = ["chromium"];

/**
 * Whether the browser is here; when it is not and we are root with apt-get, installs it first
 * (apt-get update && apt-get install -y chromium). Never throws.
 */
export async function chromiumAvailable(install = true): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (!existsSync(CHROMIUM) && install && process.getuid?.() === 0 && Bun.which("apt-get")) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const run = async (argv: string[]) => {
      const p = Bun.spawn(argv, { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, text: (err || out).trim().slice(-500) };
    };
    const update = await run(["apt-get", "update", "-qq"]);
    const inst = update.code === 0 ? await run(["apt-get", "install", "-y", "-qq", ...PACKAGES]) : update;
    if (inst.code !== 0) return { ok: false, reason: `apt-get could not install ${PACKAGES.join(" ")}: ${inst.text}` };
  }
  if (!existsSync(CHROMIUM)) return { ok: false, reason: `no browser at ${CHROMIUM} (apt-get update && apt-get install -y ${PACKAGES.join(" ")})` };
  return { ok: true };
}

export async function launchBrowser(): Promise<Browser> {
  const available = await chromiumAvailable();
  if (!available.ok) throw new Error(available.reason);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions of the page, for failure messages. */
  errors: string[];
}

/** A new browser context (its own cookies and sessionStorage: another person) with one page. */
export async function openTab(browser: Browser, viewport = { width: 1100, height: 720 }): Promise<Tab> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: "en-US", timezoneId: "UTC" });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  return { context, page, errors };
}
