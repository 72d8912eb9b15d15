import { expect, test } from "bun:test";
import { PresenceGate } from "./presence-gate.ts";

function gate(perSecond: number) {
  let now = 0;
  const out: string[] = [];
  const g = new PresenceGate(
    (room, user, joined) => out.push(`${room}:${user}:${joined ? "in" : "out"}`),
    perSecond,
    () => now,
  );
  return { g, out, advance: (ms: number) => (now += ms) };
}

test("within the budget every change goes out at once, in order", () => {
  const { g, out } = gate(5);
  g.note("r", "ann", true, "x");
  g.note("r", "ben", true, "x");
  g.note("r", "ann", false, "x");
  expect(out).toEqual(["r:ann:in", "r:ben:in", "r:ann:out"]);
  g.close();
});

test("past the budget changes wait, and only a user's net change goes out", async () => {
  const { g, out, advance } = gate(2);
  g.note("r", "a", true, "x");
  g.note("r", "b", true, "x");
  // The budget is spent: these wait.
  g.note("r", "c", true, "x");
  g.note("r", "c", false, "x"); // c came and went: nobody hears of it
  g.note("r", "a", false, "x");
  g.note("r", "a", true, "x"); // a went and came back: nothing changed
  g.note("r", "b", false, "x");
  g.note("other", "z", true, "x"); // another room has its own budget
  expect(out).toEqual(["r:a:in", "r:b:in", "other:z:in"]);
  advance(1000);
  await Bun.sleep(600);
  expect(out).toEqual(["r:a:in", "r:b:in", "other:z:in", "r:b:out"]);
  // "other" has its whole budget again and is forgotten; "r" just spent a token.
  g.sweep();
  expect(g.size).toBe(1);
  advance(5000);
  g.sweep();
  expect(g.size).toBe(0);
  g.close();
});
