// What a client is told when the server ends its stream or refuses a call for the server's own
// reasons (a shutdown, a store that cannot be read, a reader that fell behind), in one place for
// every protocol and both APIs. Each text is "<what happened>; <what to do>".
import { Code, ConnectError } from "@connectrpc/connect";

/** What a v1 client does after losing its stream: its rooms come back without a gap. */
export const RESUME = "reconnect and resume with since_seq";
/** The old API has no since_seq: its clients reconnect and pick their partner again. */
export const LEGACY_RESUME = "reconnect, then connect to your partner again";
const SHUTTING_DOWN = "server is shutting down";

/** A new call or stream while this instance drains: another instance will take it. */
export function drainRefusal(): ConnectError {
  return new ConnectError(`${SHUTTING_DOWN}; connect to another instance`, Code.Unavailable);
}

/** An open stream ended by the drain. */
export function drainEnd(): ConnectError {
  return new ConnectError(`${SHUTTING_DOWN}; ${RESUME}`, Code.Unavailable);
}

/** An open stream ended because its history cannot be read. */
export function historyUnavailable(): ConnectError {
  return new ConnectError(`history is unavailable; ${RESUME}`, Code.Unavailable);
}

/** An open stream ended because its reader fell `limit` events behind (the slow-consumer rule). */
export function fellBehind(limit: number): ConnectError {
  return new ConnectError(`this stream fell ${limit} events behind and was closed; ${RESUME}`, Code.ResourceExhausted);
}

/** The same error with advice an old-API client can follow, if it told the client to resume. */
export function forLegacyClient(err: ConnectError): ConnectError {
  const suffix = `; ${RESUME}`;
  if (!err.rawMessage.endsWith(suffix)) return err;
  return new ConnectError(`${err.rawMessage.slice(0, -suffix.length)}; ${LEGACY_RESUME}`, err.code);
}
