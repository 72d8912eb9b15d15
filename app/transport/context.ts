import { createContextKey } from "@connectrpc/connect";

/** The authenticated user of a call; undefined only in dev mode without an x-user header. */
export const userKey = createContextKey<string | undefined>(undefined, { description: "edgechat user" });
