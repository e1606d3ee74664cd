/**
 * The web app's side of the queue: schedule a user's next refresh after a save, and request one now.
 * Connections fail fast (no offline queue) because these run inside web requests; the queue and the
 * single QueueEvents of this process are created lazily, on first use.
 */
import { Job, type Queue, QueueEvents } from "bullmq";
import { AppError, ERROR_CODES } from "../core/errors.js";
import type { Clock } from "../core/types.js";
import { queueConnection, type QueueConnection, type RedisTarget } from "./connection.js";
import { QUEUES, type RefreshJobData } from "./names.js";
import { createRefreshQueue, requestRefreshNow, scheduleRefresh } from "./refresh-queue.js";
import { TimeoutError, withTimeout } from "../core/timeout.js";

export interface RefreshProducer {
  /** Puts the user's delayed job at `at` with `priority` (scheduleRefresh). */
  schedule(userUlid: string, at: Date, priority: number): Promise<void>;
  requestNow(userUlid: string): Promise<Job<RefreshJobData>>;
  /** Resolves when the job finished (either way), rejects on timeout. The database holds the result. */
  waitFor(job: Job<RefreshJobData>, timeoutMs: number): Promise<"completed" | "failed">;
  /** The error code a failed job ended with (the first word of its failure reason), or null. */
  failureCode(job: Job<RefreshJobData>): Promise<string | null>;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 3_000;
const UNAVAILABLE_BACKOFF_MS = 5_000;
const WAIT_BACKSTOP_MS = 1_000;

/** A queue or QueueEvents with its Redis connection (a Cluster to close after it, on a cluster). */
interface Opened<T extends Queue<RefreshJobData> | QueueEvents> {
  value: T;
  redis: QueueConnection;
}

export function createRefreshProducer(opts: { redis: RedisTarget; prefix: string; clock: Clock }): RefreshProducer {
  let queue: Promise<Opened<Queue<RefreshJobData>>> | null = null;
  let events: Promise<Opened<QueueEvents>> | null = null;

  // After Redis failed to answer, fail fast for a few seconds instead of making every request path
  // (e.g. each saveCalTokens) wait out the connect timeout again.
  let unavailableUntil = 0;

  function getQueue(): Promise<Queue<RefreshJobData>> {
    if (!queue && Date.now() < unavailableUntil) return Promise.reject(unavailable(null));
    queue ??= (async () => {
      const redis = queueConnection(opts.redis, "producer");
      const q = createRefreshQueue({ connection: redis.connection, prefix: opts.prefix });
      q.on("error", () => undefined); // surfaced through the failing command instead
      try {
        await withTimeout(q.waitUntilReady(), READY_TIMEOUT_MS, "refresh queue connect");
      } catch (err) {
        await closeOpened({ value: q, redis }); // stop its reconnect loop
        throw unavailable(err);
      }
      return { value: q, redis };
    })().catch((err: unknown) => {
      queue = null; // try again after the back-off
      unavailableUntil = Date.now() + UNAVAILABLE_BACKOFF_MS;
      throw err;
    });
    return queue.then((o) => o.value);
  }

  function getEvents(): Promise<QueueEvents> {
    // QueueEvents needs a blocking connection, so it gets worker-style options; one per process.
    events ??= (async () => {
      const redis = queueConnection(opts.redis, "events");
      const e = new QueueEvents(QUEUES.refresh, { connection: redis.connection, prefix: opts.prefix });
      e.on("error", () => undefined);
      try {
        await withTimeout(e.waitUntilReady(), READY_TIMEOUT_MS, "queue events connect");
      } catch (err) {
        await closeOpened({ value: e, redis });
        throw unavailable(err);
      }
      return { value: e, redis };
    })().catch((err: unknown) => {
      events = null;
      throw err;
    });
    return events.then((o) => o.value);
  }

  return {
    async schedule(userUlid, at, priority) {
      await scheduleRefresh(await getQueue(), userUlid, at, priority, opts.clock);
    },
    async requestNow(userUlid) {
      return requestRefreshNow(await getQueue(), userUlid);
    },
    async failureCode(job) {
      if (job.id === undefined) return null;
      const latest = await Job.fromId<RefreshJobData>(await getQueue(), job.id);
      // Our processor's failure reasons start with the code, e.g. "token.decrypt_failed: …".
      return /^([a-z0-9_]+\.[a-z0-9_]+)\b/.exec(latest?.failedReason ?? "")?.[1] ?? null;
    },
    async waitFor(job, timeoutMs) {
      const e = await getEvents();
      try {
        // Our own timer decides (a TimeoutError value); BullMQ's ttl is only a backstop that
        // detaches its listeners if ours somehow did not fire.
        // A fresh QueueEvents reads the stream from "$": an event written between its connect and its
        // first read is never seen, so the job's state is also polled (cheap, one HGET-like call).
        const stop = { done: false };
        const finished = Promise.race([job.waitUntilFinished(e, timeoutMs + WAIT_BACKSTOP_MS), pollUntilFinished(job, stop)]);
        await withTimeout(finished, timeoutMs, "queued refresh wait").finally(() => {
          stop.done = true;
        });
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
        q.status === "fulfilled" && q.value ? closeOpened(q.value) : undefined,
        e.status === "fulfilled" && e.value ? closeOpened(e.value) : undefined,
      ]);
      queue = null;
      events = null;
    },
  };
}

/** The queue (or QueueEvents) first, then what BullMQ leaves open of its connection. */
async function closeOpened(opened: Opened<Queue<RefreshJobData> | QueueEvents>): Promise<void> {
  await opened.value.close().catch(() => undefined);
  await opened.redis.close();
}

/** Redis did not answer: a coded, retryable error (a connect timeout is not a slow refresh). */
function unavailable(cause: unknown): AppError {
  return new AppError(ERROR_CODES.queueUnavailable, "the refresh queue is unavailable", { retryable: true, cause });
}

const POLL_EVERY_MS = 250;

/** Resolves when the job completed, rejects when it failed (like waitUntilFinished); stops with `stop`. */
async function pollUntilFinished(job: Job<RefreshJobData>, stop: { done: boolean }): Promise<void> {
  while (!stop.done) {
    await new Promise((r) => setTimeout(r, POLL_EVERY_MS).unref());
    const state = await job.getState().catch(() => "unknown");
    if (state === "completed") return;
    if (state === "failed") throw new Error("job failed");
  }
  await new Promise(() => undefined); // stopped: let the other side of the race decide
}
