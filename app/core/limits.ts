// Input limits and the per-user rates (sends; joins and leaves; reads).
import { Code, ConnectError } from "@connectrpc/connect";

const encoder = new TextEncoder();

/**
 * How long a stream that ended with an error may take to deliver its final status before its
 * transport gives up on the reader (an HTTP/2 reset, an HTTP/1.1 or WebSocket connection closed):
 * the slow-consumer rule's second half, the same on every protocol.
 */
export const STUCK_GRACE_MS = 2000;

export function checkText(text: string, maxBytes: number): string {
  if (text.length === 0) throw new ConnectError("text is empty: send 1 or more characters", Code.InvalidArgument);
  // A lone surrogate cannot be encoded as UTF-8; decoders that were lenient let one through.
  if (!text.isWellFormed()) throw new ConnectError("text is not valid UTF-8", Code.InvalidArgument);
  const bytes = encoder.encode(text).length;
  if (bytes > maxBytes) {
    throw new ConnectError(`text is ${bytes} bytes; the limit is ${maxBytes} bytes of UTF-8`, Code.InvalidArgument);
  }
  return text;
}

/**
 * Token buckets keyed by user: `rate` tokens per second up to `burst`. A bucket that has refilled
 * completely carries no information, so sweep() drops it and memory follows the active users.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `what`: what is counted, for the refusal ("messages", "joins and leaves"). */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly what = "messages",
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`, or throws ResourceExhausted with the wait until the next one. */
  take(key: string): void {
    if (this.rate <= 0) return;
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const waitMs = Math.ceil(((1 - b.tokens) / this.rate) * 1000);
      throw new ConnectError(
        `rate limit: at most ${this.rate} ${this.what} per second (bursts of ${this.burst}); retry in ${waitMs} ms`,
        Code.ResourceExhausted,
      );
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
  }

  sweep(): void {
    const now = this.now();
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
