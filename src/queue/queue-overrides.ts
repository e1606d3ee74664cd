/**
 * Queue-level settings stored in Redis override what the worker is configured with: a global rate
 * limit replaces the CAL_REFRESH_RATE_PER_MINUTE budget and a global concurrency caps
 * WORKER_CONCURRENCY, for every worker, until someone removes them (docs/architecture.md#invariant-8-rate-budget).
 * Bull Board could set both, and anyone who can write Redis still can, so the worker removes them
 * at start and says what it removed. (A 429 pause is not a setting: it is a key that expires.)
 */
import type { Queue } from "bullmq";
import type { Logger } from "../log/logger.js";

export interface ClearedOverrides {
  rateLimit: { max: number; duration: number } | null;
  concurrency: number | null;
  paused: boolean;
}

export async function clearQueueOverrides(queue: Queue, log: Logger): Promise<ClearedOverrides> {
  const [rateLimit, concurrency, paused] = await Promise.all([queue.getGlobalRateLimit(), queue.getGlobalConcurrency(), queue.isPaused()]);
  if (rateLimit) await queue.removeGlobalRateLimit();
  if (concurrency !== null) await queue.removeGlobalConcurrency();
  if (rateLimit || concurrency !== null) {
    log.warn(
      { queue: queue.name, removedRateLimit: rateLimit, removedConcurrency: concurrency },
      "removed queue-level overrides set outside the worker; the configured rate budget and concurrency apply",
    );
  }
  // Pausing is left to whoever did it (it may be deliberate), but never silent: nothing is refreshed.
  if (paused) log.warn({ queue: queue.name }, "the queue is paused: no job runs until it is resumed");
  return { rateLimit, concurrency, paused };
}
