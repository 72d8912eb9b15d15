// What a reaction may be, the same for the server's checks and the clients' pickers.
import { Code, ConnectError } from "@connectrpc/connect";

/** An emoji is short: one emoji with its modifiers (a family, a flag) fits, and so does ":shipit:". */
export const MAX_EMOJI_BYTES = 32;
/** Different emoji on one message. */
export const MAX_EMOJI_PER_MESSAGE = 20;
/** Reactions one user may have on one message. */
export const MAX_REACTIONS_PER_USER = 10;
/** Reactions on one message, everyone's: every event about the message carries them all. */
export const MAX_REACTIONS_PER_MESSAGE = 1000;
/** What the web page and the CLI offer first. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];

const encoder = new TextEncoder();

/** An emoji or a short name: 1 to MAX_EMOJI_BYTES bytes of UTF-8, no spaces or control characters. */
export function checkEmoji(emoji: string): string {
  if (emoji.length === 0) throw new ConnectError("emoji is empty: react with an emoji, such as 👍", Code.InvalidArgument);
  const bytes = encoder.encode(emoji).length;
  if (!emoji.isWellFormed() || /[\s\p{Cc}]|[\p{Cf}--[\u200d]]/v.test(emoji) || bytes > MAX_EMOJI_BYTES) {
    throw new ConnectError(`emoji must be 1 to ${MAX_EMOJI_BYTES} bytes with no spaces or control characters, such as 👍 or :shipit:`, Code.InvalidArgument);
  }
  return emoji;
}
