// A self-signed certificate for localhost and 127.0.0.1, made with openssl in a fresh temp dir:
// what the TLS tests give the server (EDGECHAT_TLS_CERT, EDGECHAT_TLS_KEY) and trust as their CA.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCert {
  certPath: string;
  keyPath: string;
  /** The certificate itself, to trust as the CA. */
  ca: Buffer;
  /** The server's environment for TLS on its port. */
  env: { EDGECHAT_TLS_CERT: string; EDGECHAT_TLS_KEY: string };
}

export function selfSignedCert(prefix = "edgechat-tls-"): TestCert {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  const made = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ]),
    { stderr: "pipe" },
  );
  if (made.exitCode !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr.toString()}`);
  return { certPath, keyPath, ca: readFileSync(certPath), env: { EDGECHAT_TLS_CERT: certPath, EDGECHAT_TLS_KEY: keyPath } };
}
