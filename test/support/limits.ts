// The limits the in-process tests run the core with: no rate limits (tests send in bursts), a few
// rooms per session, the production text and request sizes.
import type { Limits } from "../../app/config.ts";

export const TEST_LIMITS: Limits = {
  maxTextBytes: 4096,
  maxRoomsPerSession: 4,
  maxRoomsPerUser: 5,
  ratePerSecond: 0,
  rateBurst: 40,
  joinRatePerSecond: 0,
  joinBurst: 30,
  readRatePerSecond: 0,
  readBurst: 50,
  maxRequestBytes: 65536,
  sessionQueue: 1000,
};
