import { createContextKey } from "@connectrpc/connect";

/** The authenticated user of a call; undefined only in dev mode without an x-user header. */
export const userKey = createContextKey<string | undefined>(undefined, { description: "edgechat user" });

/** Whether the call's token makes its user a server-wide admin (core/auth.ts: ADMIN_CLAIM). */
export const adminKey = createContextKey<boolean>(false, { description: "edgechat server-wide admin" });
