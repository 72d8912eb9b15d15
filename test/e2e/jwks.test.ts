// EDGECHAT_JWKS_URL: tokens signed by an identity provider's key, fetched from its JWKS endpoint.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { chatClient, transport } from "../support/clients.ts";
import { startServer, type ServerProcess } from "../support/server.ts";

let server: ServerProcess;
let idp: ReturnType<typeof Bun.serve>;
let sign: (sub: string) => Promise<string>;
let foreign: (sub: string) => Promise<string>;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const other = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  idp = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ keys: [jwk] }) });
  const mint = (key: CryptoKey) => (sub: string) =>
    new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setSubject(sub).setExpirationTime("5m").sign(key);
  sign = mint(privateKey);
  foreign = mint(other.privateKey);
  server = await startServer({ EDGECHAT_JWKS_URL: `http://127.0.0.1:${idp.port}/.well-known/jwks.json` });
});
afterAll(async () => {
  await server.stop();
  idp.stop(true);
});

test("a token signed by the JWKS key is accepted, and its sub is the sender", async () => {
  const client = chatClient(transport(server.url, "grpc"));
  const res = await client.send(
    { target: { case: "room", value: "idp" }, text: "signed by the idp" },
    { headers: { authorization: `Bearer ${await sign("erin")}` } },
  );
  expect(res.message?.from).toBe("erin");
});

test("a token signed by another key is refused with Unauthenticated", async () => {
  const client = chatClient(transport(server.url, "grpc"));
  const err = await client
    .send({ target: { case: "room", value: "idp" }, text: "forged" }, { headers: { authorization: `Bearer ${await foreign("erin")}` } })
    .catch((e) => ConnectError.from(e));
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.Unauthenticated);
  expect((err as ConnectError).rawMessage).toBe("token signature is invalid");
});
