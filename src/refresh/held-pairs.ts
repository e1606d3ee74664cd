import type { HeldPair, HeldPairStore, TokenMeta, TokenStore } from "../core/ports.js";
import { withTimeout } from "../core/timeout.js";
import type { Clock } from "../core/types.js";
import type { Logger } from "../log/logger.js";

/**
 * Held pairs in this process: rotated pairs the database could not take (nothing may lose a rotated
 * refresh token: docs/architecture.md#invariant-2-persist-first). Each is kept here and, when a
 * shared store is configured, in it too, so another process can write it if this one dies. A flush
 * writes them with the same compare-and-swap as a normal save; if another writer moved the row on
 * meanwhile (a force-refresh elsewhere, a reconnect), the held pair is stale and is dropped.
 */
export interface OwnedHeldPair extends HeldPair {
  /** Lease owner to release on success ("shared" for a pair taken over from the shared store). */
  owner: string;
}

export interface HeldPairs {
  /** Holds the pair here and, when a shared store is configured, in it. */
  hold(held: OwnedHeldPair): Promise<void>;
  /** The pair reached the row after all (a retried write): drop it here and from the shared store. */
  forget(held: OwnedHeldPair): Promise<void>;
  /** Takes over a pair another process left in the shared store. */
  takeOver(held: HeldPair): void;
  /** Loads up to `limit` pairs from the shared store and flushes everything held. */
  flushShared(limit?: number): Promise<number>;
  /** The newest pair held for this user, so request paths can use it while the database is down. */
  get(userUlid: string): OwnedHeldPair | undefined;
  size(): number;
  /** Tries every held pair once; returns how many were written. */
  flush(): Promise<number>;
  /** Flushes every `intervalMs` (unref'd; stopped by close()). Started by the composition root. */
  start(intervalMs: number): void;
  close(): Promise<void>;
}

/** Bounded: Redis may be down too; the pair is still held in this process. */
const SHARED_PUT_TIMEOUT_MS = 2_000;
/** A flush gives up for this tick after this many held pairs in a row failed to write. */
const MAX_FAILURES_IN_A_ROW = 3;
/** At shutdown the database gets this long to take held pairs before they are left to the shared store. */
const CLOSE_FLUSH_TIMEOUT_MS = 3_000;

export function createHeldPairs(deps: {
  store: TokenStore;
  logger: Logger;
  clock: Clock;
  onWritten?: (held: OwnedHeldPair, meta: TokenMeta) => Promise<void> | void;
  shared?: HeldPairStore;
  /** Set when the process is shutting down (see close()). */
  closing?: { value: boolean };
}): HeldPairs {
  const { shared, logger: log } = deps;
  const held = new Map<string, OwnedHeldPair>();
  let timer: NodeJS.Timeout | null = null;
  let flushing: Promise<number> | null = null;

  const forgetShared = async (pair: OwnedHeldPair) => {
    await shared
      ?.remove(pair)
      .catch((err: unknown) => log.warn({ userUlid: pair.userUlid, err }, "shared held pair not removed; it expires on its own"));
  };

  async function writeOne(pair: OwnedHeldPair): Promise<boolean> {
    const res = await deps.store.saveRotated({
      userUlid: pair.userUlid,
      expectedVersion: pair.expectedVersion,
      owner: pair.owner,
      pair: pair.pair,
      nextRefreshAt: pair.nextRefreshAt,
      now: deps.clock(),
    });
    // Only drop what we wrote: a newer pair may have been held while this write was in flight.
    if (held.get(pair.userUlid) === pair) held.delete(pair.userUlid);
    await forgetShared(pair);
    if (!res.ok) {
      log.warn({ userUlid: pair.userUlid }, "held pair dropped: the row moved on while the database was down");
      return false;
    }
    log.warn({ userUlid: pair.userUlid, version: res.meta.version }, "held pair written after database outage");
    await deps.onWritten?.(pair, res.meta);
    return true;
  }

  async function flushOnce(): Promise<number> {
    let written = 0;
    let failedInARow = 0;
    for (const pair of [...held.values()]) {
      try {
        if (await writeOne(pair)) written += 1;
        failedInARow = 0;
      } catch (err) {
        log.warn({ userUlid: pair.userUlid, err }, "held pair not written yet; keeping it");
        // One row's own problem must not hold the others back; several failures in a row mean the
        // database is down for everyone: stop and try again on the next tick.
        failedInARow += 1;
        if (failedInARow >= MAX_FAILURES_IN_A_ROW) break;
      }
    }
    return written;
  }

  /** Puts the pair in the shared store; true when it is there (then `raw` identifies the record). */
  async function share(pair: OwnedHeldPair): Promise<boolean> {
    if (!shared) return false;
    try {
      const stored = await withTimeout(shared.put(pair), SHARED_PUT_TIMEOUT_MS, "held pair store put");
      if (held.get(pair.userUlid) === pair) held.set(pair.userUlid, { ...pair, raw: stored.raw ?? "" });
      return true;
    } catch (err) {
      log.error({ userUlid: pair.userUlid, err }, "held pair not shared; it is kept in this process only");
      return false;
    }
  }

  const self: HeldPairs = {
    async hold(pair) {
      held.set(pair.userUlid, pair);
      await share(pair);
    },
    async forget(pair) {
      const current = held.get(pair.userUlid);
      if (current && current.pair.refreshToken === pair.pair.refreshToken) {
        held.delete(pair.userUlid);
        await forgetShared(current);
      }
    },
    takeOver(pair) {
      if (!held.has(pair.userUlid)) held.set(pair.userUlid, { ...pair, owner: "shared" });
    },
    async flushShared(limit = 100) {
      if (!shared) return 0;
      for (const pair of await shared.list(limit)) self.takeOver(pair);
      return held.size > 0 ? self.flush() : 0;
    },
    get: (userUlid) => held.get(userUlid),
    size: () => held.size,
    flush() {
      flushing ??= flushOnce().finally(() => {
        flushing = null;
      });
      return flushing;
    },
    start(intervalMs) {
      if (timer) return;
      timer = setInterval(() => {
        if (held.size > 0) void self.flush();
      }, intervalMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      if (deps.closing) deps.closing.value = true;
      // Shutdown has a deadline: give the database a short chance, then make sure every pair is in
      // the shared store (written at the first failed write, unless Redis was down then too).
      if (held.size > 0) await withTimeout(self.flush(), CLOSE_FLUSH_TIMEOUT_MS, "held pair flush at close").catch(() => 0);
      const unshared = [...held.values()].filter((p) => p.raw === undefined);
      for (const pair of unshared) await share(pair);
      const lost = [...held.values()].filter((p) => p.raw === undefined).map((p) => p.userUlid);
      if (held.size > 0)
        log.warn({ users: [...held.keys()] }, "exiting with held pairs the database has not taken; they stay in the shared store");
      if (lost.length > 0) log.error({ users: lost }, "exiting with held pairs that are in no store: these rotations are lost");
    },
  };
  return self;
}
