import { expect, test } from "bun:test";
import { createLogger } from "./log.ts";

function capture(level: "debug" | "info" = "info") {
  const lines: Record<string, any>[] = [];
  return { lines, log: createLogger(level, { region: "ams" }, (line) => lines.push(JSON.parse(line))) };
}

test("one JSON object per line, with the error's stack, code and cause", () => {
  const { lines, log } = capture();
  const err = Object.assign(new Error("disk is full", { cause: new Error("ENOSPC") }), { code: "SQLITE_FULL" });
  log.error("write failed", { err });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: "error", msg: "write failed", region: "ams", err: { name: "Error", message: "disk is full", code: "SQLITE_FULL" } });
  expect(lines[0].err.stack).toContain("log.test.ts");
  expect(lines[0].err.cause).toMatchObject({ message: "ENOSPC" });
});

test("a field cannot overwrite the line's time, level or message", () => {
  const { lines, log } = capture();
  log.child({ level: "debug" }).warn("careful", { msg: "spoofed", time: "never", user: "ann" });
  expect(lines[0]).toMatchObject({ level: "warn", msg: "careful", user: "ann", field_msg: "spoofed", field_time: "never", field_level: "debug" });
  expect(lines[0].time).not.toBe("never");
});

test("lines under the level are not written", () => {
  const { lines, log } = capture();
  log.debug("noise");
  log.info("kept");
  expect(lines.map((l) => l.msg)).toEqual(["kept"]);
});
