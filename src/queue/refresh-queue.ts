/**
 * Producing refresh jobs: the scheduled (delayed, deduplicated) job per user, and the on-demand path
 * that jumps the queue. Payloads carry the user ULID only (docs/architecture.md#invariant-6-no-secret-leaves-the-row),
 * always in its canonical upper-case form: ULIDs are case-insensitive, so `01abc…` and `01ABC…` are one
 * user, and must be one deduplication id and one job, not two refreshes racing with one refresh token.
 */
import { Job, Queue, type JobsOptions, type QueueOptions } from "bullmq";
import { AppError } from "../core/errors.js";
import { FAILURES } from "../core/failures.js";
import type { Clock } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import { JOB_NAMES, PRIORITY, QUEUES, refreshDedupId, type RefreshJobData } from "./names.js";

/** Shared by every producer so retries behave the same whoever enqueued the job. */
export const REFRESH_JOB_DEFAULTS: JobsOptions = {
  // After the 8th failed attempt in a row the job lands in Failed (what operators watch) and the sweep
  // queues the user again (docs/operations.md#bull-board).
  attempts: 8,
  // "jittered" is not built in: the worker's settings.backoffStrategy computes it. A failed attempt
  // names its own retry time, the row's (jobs/refresh-report.ts).
  backoff: { type: "jittered" },
  // One line per attempt (jobs/refresh-report.ts); a bound for jobs paused many times.
  keepLogs: 50,
  removeOnComplete: { age: 3600, count: 5000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
};

export function createRefreshQueue(opts: { connection: QueueOptions["connection"]; prefix: string }): Queue<RefreshJobData> {
  return new Queue<RefreshJobData>(QUEUES.refresh, {
    connection: opts.connection,
    prefix: opts.prefix,
    defaultJobOptions: REFRESH_JOB_DEFAULTS,
  });
}

/** The keep-fresh priority by last use (src/core/priority.ts), re-exported where it has always been. */
export { priorityFor } from "../core/priority.js";

/** The canonical form of a user's ULID for job data and deduplication ids; refuses anything else. */
export function canonicalJobUlid(userUlid: string): string {
  if (!isUlid(userUlid)) throw new AppError(FAILURES.invalidUserUlid.code, FAILURES.invalidUserUlid.message);
  return normalizeUlid(userUlid);
}

export interface ScheduleResult {
  jobId: string | undefined;
}

/**
 * Puts the user's refresh job at `at` (the row's nextRefreshAt, which the database owns) with
 * `priority` (from the policy: `planNextRefresh(…).priority` or `priorityForRow`, src/core/grant-policy.ts). A user who
 * already has a delayed job keeps it, moved to `at` (`reschedule`) and given `priority`: a re-save with a shorter-lived
 * token must not leave the old, later job in place. A job that is waiting or running is left as is.
 * The moved job is the same job (BullMQ rewrites its delay, not its attempts), so a job waiting out a
 * retry keeps its attempt count; it already sits at the row's retry time (jobs/refresh-token.ts), so
 * the sweep's move changes nothing for it.
 */
export async function scheduleRefresh(
  queue: Queue<RefreshJobData>,
  userUlid: string,
  at: Date,
  priority: number,
  clock: Clock,
  /** The caller is the user's own job and has just released its deduplication key: no other job to align. */
  opts: { keyReleased?: boolean } = {},
): Promise<ScheduleResult> {
  const ulid = canonicalJobUlid(userUlid);
  const now = clock();
  const job = await queue.add(
    JOB_NAMES.refresh,
    { userUlid: ulid },
    {
      delay: Math.max(0, at.getTime() - now.getTime()),
      priority,
      deduplication: { id: refreshDedupId(ulid), reschedule: true },
    },
  );
  // Best effort: the job is in place at its new time; a failed alignment leaves only its old priority.
  if (job.id !== undefined && opts.keyReleased !== true) await alignPriority(queue, job.id, priority).catch(() => undefined);
  return { jobId: job.id };
}

/**
 * BullMQ's `reschedule` moves an existing delayed job but keeps the priority it was added with: a
 * parked user who comes back would wait at the idle priority for their next keep-fresh refresh. So a
 * delayed job whose stored priority differs gets the new one (a delayed job's priority is only read
 * when it is promoted). A job that is waiting, running or raised on demand is never touched.
 */
async function alignPriority(queue: Queue<RefreshJobData>, jobId: string, priority: number): Promise<void> {
  const stored = await Job.fromId<RefreshJobData>(queue, jobId);
  if (!stored || stored.priority === priority || stored.priority === PRIORITY.onDemand) return;
  if ((await stored.getState()) !== "delayed") return;
  await stored.changePriority({ priority });
}

/**
 * On-demand: priority 1. An existing delayed job is promoted (priority first, then promote, because
 * promote uses the stored priority) instead of duplicated. A job already running, or waiting out a
 * retry backoff (attemptsMade > 0, e.g. after a 429), is left alone: we wait for it instead of
 * stampeding Cal.com.
 */
export async function requestRefreshNow(queue: Queue<RefreshJobData>, userUlid: string): Promise<Job<RefreshJobData>> {
  const ulid = canonicalJobUlid(userUlid);
  const existingId = await queue.getDeduplicationJobId(refreshDedupId(ulid));
  const existing = existingId ? await Job.fromId<RefreshJobData>(queue, existingId) : undefined;
  if (existing) {
    try {
      const state = await existing.getState();
      if (state === "delayed" && existing.attemptsMade === 0) {
        await existing.changePriority({ priority: PRIORITY.onDemand });
        await existing.promote();
      } else if (state === "waiting" || state === "prioritized") {
        await existing.changePriority({ priority: PRIORITY.onDemand });
      }
      if (state !== "completed" && state !== "failed" && state !== "unknown") return existing;
    } catch {
      // The job moved on under us (became active or finished): fall through to a fresh add.
    }
  }
  return queue.add(JOB_NAMES.refresh, { userUlid: ulid }, { priority: PRIORITY.onDemand, deduplication: { id: refreshDedupId(ulid) } });
}
