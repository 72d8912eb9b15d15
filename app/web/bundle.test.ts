// The page as the server serves it: its config rides in a meta tag that no value can break out of.
import { expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { pageWithConfig } from "./bundle.ts";
import { CONFIG_META } from "./page-config.ts";

test("the config goes in a meta tag before </head>, escaped, and the gzip body matches", () => {
  const html = "<!doctype html><html><head><title>x</title></head><body></body></html>";
  const page = { body: new TextEncoder().encode(html), gzip: new Uint8Array(1), type: "text/html", immutable: false };
  const out = pageWithConfig(page, { auth: "jwt", region: `ams"><script>alert(1)</script>&` });
  const text = new TextDecoder().decode(out.body);
  expect(text).toContain(
    `<meta name="${CONFIG_META}" content="{&quot;auth&quot;:&quot;jwt&quot;,&quot;region&quot;:&quot;ams\\&quot;>&lt;script>alert(1)&lt;/script>&amp;&quot;}"></head>`,
  );
  expect(text).not.toContain("<script>");
  expect(new TextDecoder().decode(gunzipSync(out.gzip!))).toBe(text);
});
