// Whether the server takes traffic: what /readyz and the gRPC health service report.

export interface Readiness {
  readonly ready: boolean;
  /** Calls `listener` on every change of `ready`; returns a function that unsubscribes. */
  onChange(listener: (ready: boolean) => void): () => void;
}

/** A settable Readiness, for the server's own startup/shutdown sequence and for tests. */
export function createReadiness(initial = false): Readiness & { set(ready: boolean): void } {
  let ready = initial;
  const listeners = new Set<(ready: boolean) => void>();
  return {
    get ready() {
      return ready;
    },
    onChange(listener) {
      // Wrapped so that subscribing the same function twice still needs two unsubscribes.
      const entry = (r: boolean) => listener(r);
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    set(next) {
      if (next === ready) return;
      ready = next;
      // A copy, because a listener may unsubscribe itself (or others) while we iterate.
      for (const listener of [...listeners]) listener(ready);
    },
  };
}
