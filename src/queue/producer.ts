/**
 * The web app's side of the queue: schedule a user's next refresh after a save, and request one now.
 * Connections fail fast (no offline queue) because these run inside web requests; the queue and the
 * single QueueEvents of this process are created lazily, on first use.
 */
import { type Job, type Queue, QueueEvents } from "bullmq";
import { AppError, ERROR_CODES } from "../core/errors.js";
import type { Clock } from "../core/types.js";
import { producerConnection, workerConnection } from "./connection.js";
import { QUEUES, type RefreshJobData } from "./names.js";
import { createRefreshQueue, requestRefreshNow, scheduleRefresh } from "./refresh-queue.js";
import { TimeoutError, withTimeout } from "../core/timeout.js";

export interface RefreshProducer {
  schedule(userUlid: string, at: Date, lastUsedAt: Date | null): Promise<void>;
  requestNow(userUlid: string): Promise<Job<RefreshJobData>>;
  /** Resolves when the job finished (either way), rejects on timeout. The database holds the result. */
  waitFor(job: Job<RefreshJobData>, timeoutMs: number): Promise<"completed" | "failed">;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 3_000;
const UNAVAILABLE_BACKOFF_MS = 5_000;
const WAIT_BACKSTOP_MS = 1_000;

export function createRefreshProducer(opts: { redisUrl: string; prefix: string; clock: Clock }): RefreshProducer {
  let queue: Promise<Queue<RefreshJobData>> | null = null;
  let events: Promise<QueueEvents> | null = null;

  // After Redis failed to answer, fail fast for a few seconds instead of making every request path
  // (e.g. each saveCalTokens) wait out the connect timeout again.
  let unavailableUntil = 0;

  function getQueue(): Promise<Queue<RefreshJobData>> {
    if (!queue && Date.now() < unavailableUntil) return Promise.reject(unavailable(null));
    queue ??= (async () => {
      const q = createRefreshQueue({ connection: producerConnection(opts.redisUrl), prefix: opts.prefix });
      q.on("error", () => undefined); // surfaced through the failing command instead
      try {
        await withTimeout(q.waitUntilReady(), READY_TIMEOUT_MS, "refresh queue connect");
      } catch (err) {
        await q.close().catch(() => undefined); // stop its reconnect loop
        throw unavailable(err);
      }
      return q;
    })().catch((err: unknown) => {
      queue = null; // try again after the back-off
      unavailableUntil = Date.now() + UNAVAILABLE_BACKOFF_MS;
      throw err;
    });
    return queue;
  }

  function getEvents(): Promise<QueueEvents> {
    // QueueEvents needs a blocking connection, so it gets worker-style options; one per process.
    events ??= (async () => {
      const e = new QueueEvents(QUEUES.refresh, { connection: workerConnection(opts.redisUrl), prefix: opts.prefix });
      e.on("error", () => undefined);
      try {
        await withTimeout(e.waitUntilReady(), READY_TIMEOUT_MS, "queue events connect");
      } catch (err) {
        await e.close().catch(() => undefined);
        throw unavailable(err);
      }
      return e;
    })().catch((err: unknown) => {
      events = null;
      throw err;
    });
    return events;
  }

  return {
    async schedule(userUlid, at, lastUsedAt) {
      await scheduleRefresh(await getQueue(), userUlid, at, lastUsedAt, opts.clock);
    },
    async requestNow(userUlid) {
      return requestRefreshNow(await getQueue(), userUlid);
    },
    async waitFor(job, timeoutMs) {
      const e = await getEvents();
      try {
        // Our own timer decides (a TimeoutError value); BullMQ's ttl is only a backstop that
        // detaches its listeners if ours somehow did not fire.
        await withTimeout(job.waitUntilFinished(e, timeoutMs + WAIT_BACKSTOP_MS), timeoutMs, "queued refresh wait");
        return "completed";
      } catch (err) {
        if (err instanceof TimeoutError) throw err;
        // The job failed, or it was removed after finishing (then the database tells the rest).
        const state = await job.getState().catch(() => "unknown");
        return state === "failed" ? "failed" : "completed";
      }
    },
    async close() {
      const [q, e] = await Promise.allSettled([queue, events]);
      await Promise.allSettled([
        q.status === "fulfilled" && q.value ? q.value.close() : undefined,
        e.status === "fulfilled" && e.value ? e.value.close() : undefined,
      ]);
      queue = null;
      events = null;
    },
  };
}

/** Redis did not answer: a coded, retryable error (a connect timeout is not a slow refresh). */
function unavailable(cause: unknown): AppError {
  return new AppError(ERROR_CODES.queueUnavailable, "the refresh queue is unavailable", { retryable: true, cause });
}
