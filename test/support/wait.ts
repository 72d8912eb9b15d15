/** Thrown by a check to stop polling at once: the condition can no longer come true. */
export class GiveUp extends Error {}

/**
 * Polls `check` every `everyMs` until it returns a truthy value, or fails after `ms`: the one
 * polling helper of the tests (in-process tests poll every few ms, end-to-end ones less often).
 */
export async function eventually<T>(check: () => T | Promise<T>, ms = 5000, what = "condition", everyMs = 20): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await Bun.sleep(everyMs);
  }
}
