// What counts as unread, the same for the server's counts and the clients' badges and highlights.

/** Unread messages are counted up to this many per room (ListRooms): a client shows "99+" from here on. */
export const UNREAD_CAP = 100;

/**
 * Whether a text mentions the user as @user: not as part of a longer id (@anna is not @ann), and a
 * sentence's full stop after it is not part of it ("thanks @ann." mentions ann).
 */
export function mentions(text: string, user: string): boolean {
  const at = `@${user}`;
  for (let i = text.indexOf(at); i >= 0; i = text.indexOf(at, i + 1)) {
    const before = i === 0 ? "" : text[i - 1];
    const after = text.slice(i + at.length, i + at.length + 2);
    const idChar = (c: string) => /^[A-Za-z0-9_.-]$/.test(c);
    const endsHere = after === "" || !idChar(after[0]) || (after[0] === "." && (after.length === 1 || !idChar(after[1])));
    if (!idChar(before) && endsHere) return true;
  }
  return false;
}
