// JSON lines on stdout, like the server's logs (the sidecar imports nothing from app/).
export type Log = Record<"info" | "warn" | "error", (msg: string, fields?: Record<string, unknown>) => void>;

export function createLog(base: Record<string, unknown> = { svc: "edgechat-sidecar" }): Log {
  const line =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }) + "\n");
  return { info: line("info"), warn: line("warn"), error: line("error") };
}
