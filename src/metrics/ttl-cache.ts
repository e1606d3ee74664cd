/**
 * At most one call of `fn` per `ttlMs`, whatever the call rate: callers within `ttlMs` of the start of
 * the last call get its outcome (value or failure), and a call still in flight is shared even past
 * `ttlMs`, so a slow dependency never has two of these queries running at once.
 */
export function cachedFor<T>(fn: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let last: { startedAt: number; promise: Promise<T>; settled: boolean } | null = null;
  return () => {
    const t = now();
    if (last && (!last.settled || t - last.startedAt < ttlMs)) return last.promise;
    const entry = { startedAt: t, promise: fn(), settled: false };
    const settle = () => {
      entry.settled = true;
    };
    // Marks the entry settled either way; the failure itself reaches every caller through `promise`.
    entry.promise.then(settle, settle);
    last = entry;
    return entry.promise;
  };
}
