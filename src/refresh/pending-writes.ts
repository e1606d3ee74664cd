import type { RecoveryRecord, RecoveryStore, TokenMeta, TokenStore } from "../core/ports.js";
import type { Clock } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import { withTimeout } from "../core/timeout.js";

/**
 * Rotated pairs that could not be written because the database was unreachable (invariant 2: nothing
 * may lose a rotated refresh token). Held in this process's memory and flushed with the same
 * compare-and-swap as a normal save once the database answers again. If another writer moved the row
 * on meanwhile (a force-refresh elsewhere), the held pair is stale and is dropped.
 */
export interface PendingWrite extends RecoveryRecord {
  /** Lease owner to release on success ("recovered" for a record taken over from another process). */
  owner: string;
}

export interface PendingWrites {
  /** Holds the pair here and, when a recovery store is configured, in it (so other processes can flush it). */
  add(write: PendingWrite): Promise<void>;
  /** Takes over a record another process left in the recovery store. */
  adopt(record: RecoveryRecord): void;
  /** Loads up to `limit` records from the recovery store and flushes them. */
  recover(limit?: number): Promise<number>;
  /** The newest pair held for this user, so request paths can use it while the database is down. */
  get(userUlid: string): PendingWrite | undefined;
  size(): number;
  /** Tries every held write once; returns how many were persisted. */
  flush(): Promise<number>;
  /** Starts a background flush every `intervalMs` (unref'd; stopped by close()). */
  start(intervalMs: number): void;
  close(): Promise<void>;
}

export function createPendingWrites(deps: {
  store: TokenStore;
  logger: Logger;
  clock: Clock;
  onPersisted?: (write: PendingWrite, meta: TokenMeta) => Promise<void> | void;
  recovery?: RecoveryStore;
}): PendingWrites {
  const recovery = deps.recovery;
  const forget = async (write: PendingWrite) => {
    await recovery?.remove(write).catch((err: unknown) => deps.logger.warn({ userUlid: write.userUlid, err }, "recovery record not removed; it expires on its own"));
  };
  const held = new Map<string, PendingWrite>();
  let timer: NodeJS.Timeout | null = null;
  let flushing: Promise<number> | null = null;

  async function flushOnce(): Promise<number> {
    let persisted = 0;
    for (const write of [...held.values()]) {
      try {
        const res = await deps.store.saveRotated({
          userUlid: write.userUlid,
          expectedVersion: write.expectedVersion,
          owner: write.owner,
          pair: write.pair,
          nextRefreshAt: write.nextRefreshAt,
          now: deps.clock(),
        });
        // Only drop what we wrote: a newer pair may have been added while this write was in flight.
        if (held.get(write.userUlid) === write) held.delete(write.userUlid);
        await forget(write);
        if (res.ok) {
          persisted += 1;
          deps.logger.warn({ userUlid: write.userUlid, version: res.meta.version }, "held rotated pair persisted after database outage");
          await deps.onPersisted?.(write, res.meta);
        } else {
          deps.logger.warn({ userUlid: write.userUlid }, "held rotated pair dropped: the row moved on while the database was down");
        }
      } catch (err) {
        deps.logger.warn({ userUlid: write.userUlid, err }, "database still unavailable; keeping rotated pair in memory");
        break; // the database is down for everyone; try again on the next tick
      }
    }
    return persisted;
  }

  return {
    async add(write) {
      held.set(write.userUlid, write);
      if (!recovery) return;
      try {
        // Bounded: Redis may be down too; the pair is still held here.
        const stored = await withTimeout(recovery.put(write), 2_000, () => new Error("recovery store timeout"));
        if (held.get(write.userUlid) === write) held.set(write.userUlid, { ...write, raw: stored.raw ?? "" });
      } catch (err) {
        deps.logger.error({ userUlid: write.userUlid, err }, "recovery record not written; the pair is held in this process only");
      }
    },
    adopt(record) {
      if (!held.has(record.userUlid)) held.set(record.userUlid, { ...record, owner: "recovered" });
    },
    async recover(limit = 100) {
      if (!recovery) return 0;
      for (const record of await recovery.list(limit)) this.adopt(record);
      return held.size > 0 ? this.flush() : 0;
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
        if (held.size > 0) void this.flush();
      }, intervalMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      // Last chance before exit: a held pair that is not written now is lost with the process.
      if (held.size > 0) await this.flush();
      if (held.size > 0) deps.logger.error({ users: [...held.keys()] }, "exiting with rotated pairs that could not be persisted");
    },
  };
}
