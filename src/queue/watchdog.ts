import type { Queue, Worker } from "bullmq";
import { componentLogger, type Logger } from "../log/logger.js";

/**
 * BullMQ workers have been seen to stop consuming silently after a Redis outage (wait grows, active
 * stays 0, health pings fine). This watchdog notices "jobs waiting, none active" for longer than
 * `stallMs` (while the queue is not paused or rate-limited) and hands over to `onStall`, which exits
 * non-zero so the dyno manager restarts the process.
 */
export function startWatchdog(deps: {
  queue: Queue;
  worker: Worker;
  stallMs: number;
  logger: Logger;
  onStall: (reason: string) => void;
  checkEveryMs?: number;
}): { stop(): void } {
  const log = componentLogger(deps.logger, "refreshRequests");
  let stalledSince: number | null = null;
  let stopped = false;

  async function check(): Promise<void> {
    try {
      const [counts, rateLimitTtl, paused] = await Promise.all([
        deps.queue.getJobCounts("waiting", "prioritized", "active"),
        deps.queue.getRateLimitTtl(),
        deps.queue.isPaused(),
      ]);
      const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
      const idleWithWork = waiting > 0 && (counts.active ?? 0) === 0 && rateLimitTtl <= 0 && !paused && deps.worker.isRunning();
      if (!idleWithWork) {
        stalledSince = null;
        return;
      }
      stalledSince ??= Date.now();
      if (Date.now() - stalledSince >= deps.stallMs && !stopped) {
        stopped = true;
        deps.onStall(`${waiting} jobs waiting and none active for ${Math.round((Date.now() - stalledSince) / 1000)} s`);
      }
    } catch (err) {
      // Redis unreachable: the connection retries on its own; a stall is judged once it answers.
      log.debug({ err }, "watchdog check failed");
    }
  }

  const timer = setInterval(() => void check(), deps.checkEveryMs ?? Math.max(1_000, Math.min(30_000, deps.stallMs / 4)));
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
