import { expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { checkRoomAccess, checkUserId, dmRoom } from "./names.ts";

const code = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (err) {
    return Code[(err as ConnectError).code];
  }
};

test("room names", () => {
  expect(checkRoomAccess("ann", "lobby")).toBe("lobby");
  expect(checkRoomAccess("ann", "a.b_c:d-9")).toBe("a.b_c:d-9");
  expect(code(() => checkRoomAccess("ann", "bad room!"))).toBe("InvalidArgument");
  expect(code(() => checkRoomAccess("ann", "x".repeat(65)))).toBe("InvalidArgument");
  expect(code(() => checkRoomAccess("ann", ""))).toBe("InvalidArgument");
});

test("names are case-sensitive, and the dm: prefix is reserved in every case", () => {
  expect(checkRoomAccess("ann", "Lobby")).toBe("Lobby");
  expect(checkRoomAccess("ann", "dmz")).toBe("dmz");
  for (const room of ["DM:bob:carol", "Dm:ann:bob", "dM:x"]) {
    expect(code(() => checkRoomAccess("ann", room))).toBe("InvalidArgument");
  }
  expect(() => checkRoomAccess("bob", "DM:bob:carol")).toThrow('names that start with "dm:" in any case are reserved');
  expect(checkUserId("Ann")).toBe("Ann");
});

test("DM rooms: sorted ids, only their two users, even with long ids", () => {
  const long = "u".repeat(64);
  const room = dmRoom(long, "ann");
  expect(room).toBe(`dm:ann:${long}`);
  expect(checkRoomAccess(long, room)).toBe(room);
  expect(checkRoomAccess("ann", room)).toBe(room);
  expect(code(() => checkRoomAccess("ben", room))).toBe("PermissionDenied");
  expect(code(() => checkRoomAccess("ann", `dm:${long}:ann`))).toBe("InvalidArgument");
  expect(code(() => checkRoomAccess("ann", "dm:ann"))).toBe("InvalidArgument");
  expect(code(() => checkRoomAccess("ann", "dm:ann:b:c"))).toBe("InvalidArgument");
});

test("user ids; Server is reserved", () => {
  expect(checkUserId("ann.b-c_9")).toBe("ann.b-c_9");
  expect(code(() => checkUserId("a:b"))).toBe("InvalidArgument");
  expect(() => checkUserId("Server")).toThrow('user id "Server" is reserved');
});
