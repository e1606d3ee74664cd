/**
 * The web app's side of the queue: schedule a user's next refresh after a save, and request one now.
 * Connections fail fast (no offline queue) because these run inside web requests; the queue and the
 * single QueueEvents of this process are created lazily, on first use.
 */
import { Job, Queue, QueueEvents } from "bullmq";
import type { Clock } from "../core/types.js";
import { producerConnection, workerConnection } from "./connection.js";
import { QUEUES, type RefreshJobData } from "./names.js";
import { createRefreshQueue, requestRefreshNow, scheduleRefresh } from "./refresh-queue.js";
import { withTimeout } from "../core/timeout.js";

export interface RefreshProducer {
  schedule(userUlid: string, at: Date, lastUsedAt: Date | null): Promise<void>;
  requestNow(userUlid: string): Promise<Job<RefreshJobData>>;
  /** Resolves when the job finished (either way), rejects on timeout. The database holds the result. */
  waitFor(job: Job<RefreshJobData>, timeoutMs: number): Promise<"completed" | "failed">;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 3_000;
const UNAVAILABLE_BACKOFF_MS = 5_000;

export function createRefreshProducer(opts: { redisUrl: string; prefix: string; clock: Clock }): RefreshProducer {
  let queue: Promise<Queue<RefreshJobData>> | null = null;
  let events: Promise<QueueEvents> | null = null;

  // After Redis failed to answer, fail fast for a few seconds instead of making every request path
  // (e.g. each saveCalTokens) wait out the connect timeout again.
  let unavailableUntil = 0;

  function getQueue(): Promise<Queue<RefreshJobData>> {
    if (!queue && Date.now() < unavailableUntil) return Promise.reject(new Error("queue: Redis unavailable (backing off)"));
    queue ??= (async () => {
      const q = createRefreshQueue({ connection: producerConnection(opts.redisUrl), prefix: opts.prefix });
      q.on("error", () => undefined); // surfaced through the failing command instead
      try {
        await withTimeout(q.waitUntilReady(), READY_TIMEOUT_MS, () => new Error("queue: Redis not ready"));
      } catch (err) {
        await q.close().catch(() => undefined); // stop its reconnect loop
        throw err;
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
        await withTimeout(e.waitUntilReady(), READY_TIMEOUT_MS, () => new Error("queue events: Redis not ready"));
      } catch (err) {
        await e.close().catch(() => undefined);
        throw err;
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
        await job.waitUntilFinished(e, timeoutMs);
        return "completed";
      } catch (err) {
        if (err instanceof Error && /timed out|Missing key/i.test(err.message)) {
          // "Missing key": the job was already removed after finishing; the database tells the rest.
          if (/Missing key/i.test(err.message)) return "completed";
          throw err;
        }
        return "failed";
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
