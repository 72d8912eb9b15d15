import { expect, test } from "bun:test";
import { loadConfig } from "./config.ts";

test("defaults", () => {
  const c = loadConfig({});
  expect(c).toMatchObject({ port: 8080, host: "0.0.0.0", region: "local", dataDir: "./data", drainSeconds: 4, requireAuth: false, logLevel: "info" });
  expect(c.limits).toEqual({
    maxTextBytes: 4096,
    maxRoomsPerSession: 128,
    maxRoomsPerUser: 100,
    ratePerSecond: 20,
    rateBurst: 40,
    joinRatePerSecond: 10,
    joinBurst: 30,
    readRatePerSecond: 10,
    readBurst: 50,
    maxRequestBytes: 65536,
    sessionQueue: 1000,
  });
});

test("the region falls back to Fly's", () => {
  expect(loadConfig({ FLY_REGION: "nrt" }).region).toBe("nrt");
  expect(loadConfig({ FLY_REGION: "nrt", EDGECHAT_REGION: "ams" }).region).toBe("ams");
});

test("bad values are refused with the variable's name", () => {
  expect(() => loadConfig({ PORT: "http" })).toThrow("PORT must be a whole number from 0 to 65535");
  expect(() => loadConfig({ PORT: "70000" })).toThrow("PORT");
  expect(() => loadConfig({ EDGECHAT_SESSION_QUEUE: "10.5" })).toThrow("EDGECHAT_SESSION_QUEUE");
  expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow("LOG_LEVEL must be one of debug, info, warn, error");
  expect(() => loadConfig({ EDGECHAT_JWT_SECRET: "s", EDGECHAT_JWKS_URL: "http://x" })).toThrow("not both");
  expect(() => loadConfig({ EDGECHAT_TLS_CERT: "cert.pem" })).toThrow("both EDGECHAT_TLS_CERT and EDGECHAT_TLS_KEY");
});
