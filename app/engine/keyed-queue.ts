// Work that must not overlap per key (a room's appends, a message's changes): each task starts
// once the one before it with the same key has settled; different keys run side by side.
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(task);
    this.tails.set(key, next);
    void next.catch(() => {}).finally(() => this.tails.get(key) === next && this.tails.delete(key));
    return next;
  }

  /** Resolves once everything queued by now has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}
