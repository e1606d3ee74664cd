/**
 * The sweep: the safety net for lost Redis state, rows written by other code and missed runs. It
 * pages (keyset) through ACTIVE rows due within the next interval and (re)puts each user's delayed
 * job at the row's nextRefreshAt. Adds are deduplicated per user, so a user who has a job keeps it
 * (a job waiting out a retry keeps its attempts; once it has failed for good BullMQ releases its
 * deduplication key and the next sweep queues a fresh job, so a failing user stays covered).
 * Cost grows with the number of due rows, not the table; a time budget bounds one run.
 */
import type { Job, Queue } from "bullmq";
import { type GrantPolicy, priorityForRow } from "../src/core/grant-policy.js";
import type { Clock } from "../src/core/types.js";
import { componentLogger, type Logger } from "../src/log/logger.js";
import type { RefreshJobData } from "../src/queue/names.js";
import { scheduleRefresh } from "../src/queue/refresh-queue.js";
import type { HeldPairs } from "../src/refresh/held-pairs.js";
import { findDuePage, type DueCursor } from "../src/store/due-query.js";
import type { PrismaClient } from "../src/store/prisma.js";
import { pruneOldRows } from "../src/store/retention.js";

export interface SweepResult {
  visited: number;
  /** Audit rows and delivered events removed by retention in this run. */
  pruned?: { audit: number; events: number };
  pages: number;
  complete: boolean;
  durationMs: number;
}

export interface SweepOptions {
  /** Rows due within this window from now are enqueued (as delayed jobs). */
  horizonMs: number;
  pageSize?: number;
  /** Stop after this long; the next tick continues (rows stay due). */
  budgetMs?: number;
}

export type Sweep = (opts: SweepOptions, dryRun?: boolean) => Promise<SweepResult>;

export function createSweep(deps: {
  prisma: PrismaClient;
  queue: Queue<RefreshJobData>;
  logger: Logger;
  clock: Clock;
  /** The refresh policy: a job's priority comes from the row's kind and last use (`priorityForRow`). */
  policy: Pick<GrantPolicy, "keepFreshWindowMs">;
  /** Keep audit rows and delivered events this long; pruned at the end of each sweep. */
  retentionMs?: number;
}): Sweep {
  const log = componentLogger(deps.logger, "refreshRequests");

  return async function sweep(opts: SweepOptions, dryRun = false): Promise<SweepResult> {
    const started = deps.clock();
    const pageSize = opts.pageSize ?? 500;
    const budgetMs = opts.budgetMs ?? 30_000;
    const horizon = new Date(started.getTime() + opts.horizonMs);
    let cursor: DueCursor | null = null;
    let visited = 0;
    let pages = 0;
    for (;;) {
      const rows = await findDuePage(deps.prisma, { horizon, after: cursor, limit: pageSize });
      pages += 1;
      if (!dryRun && rows.length > 0) {
        // One bad add must not stop the sweep; the next tick retries it.
        const results = await Promise.allSettled(
          rows.map((r) =>
            scheduleRefresh(deps.queue, r.userUlid, r.nextRefreshAt, priorityForRow(r, deps.clock(), deps.policy), deps.clock),
          ),
        );
        const failed = results.filter((r) => r.status === "rejected").length;
        if (failed > 0) log.warn({ failed }, "sweep could not enqueue some users");
      }
      visited += rows.length;
      const last = rows.at(-1);
      if (!last || rows.length < pageSize) {
        const pruned =
          !dryRun && deps.retentionMs !== undefined
            ? await pruneOldRows(deps.prisma, new Date(started.getTime() - deps.retentionMs)).catch((err: unknown) => {
                log.warn({ err }, "retention pruning failed; the next sweep retries");
                return undefined;
              })
            : undefined;
        const result = {
          visited,
          pages,
          complete: true,
          durationMs: deps.clock().getTime() - started.getTime(),
          ...(pruned ? { pruned } : {}),
        };
        log.info(result, dryRun ? "sweep (dry run) done" : "sweep done");
        return result;
      }
      cursor = { nextRefreshAt: last.nextRefreshAt, userUlid: last.userUlid };
      if (deps.clock().getTime() - started.getTime() > budgetMs) {
        const result = { visited, pages, complete: false, durationMs: deps.clock().getTime() - started.getTime() };
        log.warn(result, "sweep stopped at its time budget; the next tick continues");
        return result;
      }
    }
  };
}

/**
 * Processor for the scheduled sweep job (QUEUES.sweep, one run per tick across all processes). Held
 * pairs another process could not write (and may have died holding) are flushed first; then the
 * sweep looks two intervals ahead, within half an interval (at least 1 s). `{ dryRun: true }` in the
 * job data only counts.
 */
export function createSweepProcessor(deps: {
  sweep: Sweep;
  heldPairs: Pick<HeldPairs, "flushShared">;
  /** The scheduler's tick (SWEEP_INTERVAL_SECONDS). */
  intervalMs: number;
  logger: Logger;
}): (job: Job) => Promise<SweepResult> {
  const log = componentLogger(deps.logger, "refreshRequests");
  return async (job) => {
    const dryRun = job.data?.dryRun === true;
    if (!dryRun) {
      await deps.heldPairs.flushShared().catch((err: unknown) => log.warn({ err }, "shared held pairs not flushed"));
    }
    return deps.sweep({ horizonMs: deps.intervalMs * 2, budgetMs: Math.max(1_000, deps.intervalMs / 2) }, dryRun);
  };
}
