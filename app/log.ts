// One JSON object per line on stdout, so that Fly's log shipper and jq read it as is.
export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const RESERVED = new Set(["time", "level", "msg"]);
const toStdout = (line: string) => void process.stdout.write(line + "\n");

/** `out` takes each line without its newline (stdout by default). */
export function createLogger(level: Level = "info", base: Record<string, unknown> = {}, out: (line: string) => void = toStdout): Logger {
  const min = rank[level] ?? rank.info;
  const write = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < min) return;
    const line: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg };
    // A field never overwrites the line's own time, level or message: it keeps its value under another name.
    for (const [k, v] of Object.entries({ ...base, ...fields })) line[RESERVED.has(k) ? `field_${k}` : k] = v;
    out(JSON.stringify(line, errorReplacer));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, out),
  };
}

function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return {
      name: value.name,
      message: value.message,
      ...(code === undefined ? {} : { code }),
      stack: value.stack,
      ...(value.cause === undefined ? {} : { cause: value.cause }),
    };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}
