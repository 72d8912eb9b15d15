import { expect, test } from "bun:test";
import { mentions } from "./unread.ts";

test("mentions: @user as a whole id, a full stop after it allowed", () => {
  const yes = ["@ann", "hi @ann", "hi @ann!", "thanks @ann.", "@ann, look", "(@ann)"];
  const no = ["@anna", "ann", "mail@ann", "@ann.b", "@ann_x", "hi @Ann"];
  expect(yes.filter((t) => mentions(t, "ann"))).toEqual(yes);
  expect(no.filter((t) => mentions(t, "ann"))).toEqual([]);
});
