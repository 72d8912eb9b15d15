// The parts of connect-es that it exports but marks internal ("@private ... does not follow
// semantic versioning"), all in one place: the Connect path needs them to rewrite what connect-es
// writes (decode-errors.ts, connect-wire.ts). connect-internals.test.ts checks every assumption
// made about them, so that an upgrade that changes one fails here, loudly, and nowhere else.
export { encodeEnvelope } from "@connectrpc/connect/protocol";
export { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
export { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
