// The authenticator on its own: claims that are signed but wrong are refused before they reach the core.
import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { createAuthenticator } from "./auth.ts";

const SECRET = "a-secret-of-thirty-two-bytes-or-more!";
const auth = createAuthenticator({ jwtSecret: SECRET });

async function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
}

async function refusal(claims: Record<string, unknown>): Promise<ConnectError> {
  const headers = new Headers({ authorization: `Bearer ${await token(claims)}` });
  return auth.authenticate(headers).then(
    () => {
      throw new Error("accepted");
    },
    (err: ConnectError) => err,
  );
}

test("a valid token's sub is the user", async () => {
  const headers = new Headers({ authorization: `Bearer ${await token({ sub: "ann", iat: Math.floor(Date.now() / 1000) })}` });
  expect(await auth.authenticate(headers)).toBe("ann");
});

test("a sub that is not a string is refused, even when signed", async () => {
  for (const sub of [["ann"], 42, { id: "ann" }, true]) {
    const err = await refusal({ sub });
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/sub claim/);
  }
});

test("an iat in the future is refused; a little clock skew is not", async () => {
  const now = Math.floor(Date.now() / 1000);
  const err = await refusal({ sub: "ann", iat: now + 3600 });
  expect(err.code).toBe(Code.Unauthenticated);
  expect(err.rawMessage).toContain("iat");
  const skewed = new Headers({ authorization: `Bearer ${await token({ sub: "ann", iat: now + 30 })}` });
  expect(await auth.authenticate(skewed)).toBe("ann");
});

test("a secret shorter than 32 bytes is refused at start", () => {
  expect(() => createAuthenticator({ jwtSecret: "change-me" })).toThrow("EDGECHAT_JWT_SECRET is 9 bytes; it must be at least 32");
  expect(() => createAuthenticator({ jwtSecret: "x".repeat(32) })).not.toThrow();
});
