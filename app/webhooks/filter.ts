// The message filter hook over HTTP (EDGECHAT_FILTER_URL): before a user's message or edit is
// stored, the server POSTs it, signed as a webhook is (webhook-id, webhook-timestamp,
// webhook-signature with EDGECHAT_FILTER_SECRET), and waits at most EDGECHAT_FILTER_TIMEOUT_MS for
//   {"action": "accept"} | {"action": "reject", "reason": "..."} | {"action": "rewrite", "text": "..."}
// A hook that does not answer in time, answers anything else, or cannot be reached fails open (the
// message is stored as it is) or closed (refused with unavailable), per EDGECHAT_FILTER_FAIL.
import { Code, ConnectError } from "@connectrpc/connect";
import type { FilterInput, MessageFilter } from "../core/message-filter.ts";
import type { Logger } from "../log.ts";
import { secretKey, signedHeaders } from "./signing.ts";

export interface FilterOptions {
  url: string;
  /** A whsec_ secret the hook verifies requests with; unset: unsigned. */
  secret?: string;
  timeoutMs: number;
  failOpen: boolean;
}

/** Counts for the metrics: each answer by what it was. */
export type FilterOutcome = "accept" | "reject" | "rewrite" | "failed_open" | "failed_closed";

const MAX_REASON = 200;

export function httpFilter(opts: FilterOptions, log: Logger, count?: (outcome: FilterOutcome) => void): MessageFilter {
  const key = opts.secret ? secretKey(opts.secret) : undefined;
  const fail = (why: string, input: FilterInput): string => {
    log.warn("message filter failed", { why, failOpen: opts.failOpen, room: input.room, from: input.from });
    count?.(opts.failOpen ? "failed_open" : "failed_closed");
    if (opts.failOpen) return input.text;
    throw new ConnectError("the message filter is not answering: try again shortly", Code.Unavailable);
  };
  return {
    async check(input) {
      const body = JSON.stringify({ kind: input.kind, room: input.room, from: input.from, text: input.text, seq: String(input.seq) });
      const id = `flt_${crypto.randomUUID().replaceAll("-", "")}`;
      let answer: { action?: unknown; reason?: unknown; text?: unknown };
      try {
        const res = await fetch(opts.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(key ? signedHeaders(key, id, Math.floor(Date.now() / 1000), body) : { "webhook-id": id }) },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs),
          redirect: "manual",
        });
        if (res.status < 200 || res.status >= 300) {
          await res.body?.cancel().catch(() => {});
          return fail(`HTTP ${res.status}`, input);
        }
        answer = (await res.json()) as typeof answer;
      } catch (err) {
        return fail((err as Error).name === "TimeoutError" ? `no answer within ${opts.timeoutMs} ms` : String((err as Error).message ?? err), input);
      }
      switch (answer?.action) {
        case "accept":
          count?.("accept");
          return input.text;
        case "reject": {
          count?.("reject");
          const reason = typeof answer.reason === "string" && answer.reason ? answer.reason.slice(0, MAX_REASON) : "not allowed here";
          throw new ConnectError(`the message was refused: ${reason}`, Code.PermissionDenied);
        }
        case "rewrite":
          if (typeof answer.text !== "string") return fail(`a rewrite without a text`, input);
          count?.("rewrite");
          return answer.text;
        default:
          return fail(`an answer that is none of accept, reject or rewrite`, input);
      }
    },
  };
}
