import { expect, test } from "bun:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { MessageSchema, Role, RoomChangeKind, type RoomChangeSchema, RoomKind, UpdateKind } from "../gen/chat/v1/chat_pb.ts";
import { describeChange, describeUpdate } from "./changes.ts";

const entry = (from: string, change: MessageInitShape<typeof RoomChangeSchema>) => create(MessageSchema, { from, change });

test("each kind of room change reads as one line; a plain message is not a change", () => {
  const K = RoomChangeKind;
  expect(
    [
      entry("olga", { kind: K.CREATED, room: { kind: RoomKind.PRIVATE, title: "Team" } }),
      entry("olga", { kind: K.UPDATED, room: { kind: RoomKind.PUBLIC, topic: "plans" } }),
      entry("olga", { kind: K.MEMBER_ADDED, user: "ben" }),
      entry("ben", { kind: K.MEMBER_REMOVED, user: "ben" }),
      entry("olga", { kind: K.MEMBER_REMOVED, user: "cat" }),
      entry("olga", { kind: K.ROLE_CHANGED, user: "ben", role: Role.ADMIN }),
      entry("olga", { kind: K.BANNED, user: "eve", reason: "spam", until: timestampFromMs(Date.UTC(2030, 0, 1)) }),
      entry("olga", { kind: K.UNBANNED, user: "eve" }),
      entry("olga", { kind: K.MUTED, user: "dan" }),
      entry("olga", { kind: K.UNMUTED, user: "dan" }),
    ].map(describeChange),
  ).toEqual([
    'olga created this private room "Team"',
    'olga changed the room: no title, topic "plans", public',
    "olga added ben",
    "ben left the room",
    "olga removed cat",
    "olga made ben an admin",
    "olga banned eve until 2030-01-01T00:00:00Z: spam",
    "olga lifted eve's ban",
    "olga muted dan for good",
    "olga unmuted dan",
  ]);
  expect(describeChange(create(MessageSchema, { from: "ann", text: "hi" }))).toBeUndefined();
});

test("each kind of change to a message reads as one line, naming whose it was; a deleted one's text is never shown", () => {
  const K = UpdateKind;
  const target = (from: string, text: string, deleted = false) => ({ seq: 3n, from, text, deleted });
  const up = (from: string, kind: UpdateKind, message: ReturnType<typeof target>, emoji = "") =>
    create(MessageSchema, { from, update: { kind, targetSeq: 3n, emoji, message } });
  expect(
    [
      up("ann", K.EDITED, target("ann", "the plan")),
      up("ann", K.EDITED, target("ann", "", true)),
      up("adam", K.DELETED, target("ann", "", true)),
      up("ben", K.REACTION_ADDED, target("ann", "the plan"), "👍"),
      up("ann", K.REACTION_REMOVED, target("ann", "the plan"), "🎉"),
    ].map(describeUpdate),
  ).toEqual([
    "ann edited their message #3: the plan",
    "ann edited their message #3",
    "adam deleted ann's message #3",
    "ben reacted 👍 to ann's message #3",
    "ann took back 🎉 on their message #3",
  ]);
  expect(describeUpdate(create(MessageSchema, { from: "ann", text: "hi" }))).toBeUndefined();
});
