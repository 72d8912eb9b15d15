// What a call was refused with, as "Code: message" for a test to compare whole: the code and the
// words a person reads both matter.
import { Code, ConnectError } from "@connectrpc/connect";

/** "PermissionDenied: ..." for a call (or a promise) that failed, "no error" for one that did not. */
export async function refusal(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    const e = ConnectError.from(err);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
  return "no error";
}
