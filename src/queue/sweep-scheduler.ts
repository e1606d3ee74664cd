import type { Queue } from "bullmq";
import { JOB_NAMES, SWEEP_SCHEDULER_ID } from "./names.js";

/**
 * One sweep per tick across every process: a job scheduler keeps exactly one delayed job, and global
 * concurrency 1 stops a slow sweep from overlapping the next tick. Upsert only when missing or
 * changed, because concurrent upserts at boot are a known trouble spot. Called by the release phase
 * (once per deploy) and by the worker (at start and periodically, in case Redis lost it).
 */
export async function ensureSweepScheduler(sweepQueue: Queue, everyMs: number): Promise<void> {
  const existing = await sweepQueue.getJobScheduler(SWEEP_SCHEDULER_ID);
  if (!existing || existing.every !== everyMs) {
    await sweepQueue.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { every: everyMs },
      { name: JOB_NAMES.sweep, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } } },
    );
  }
  await sweepQueue.setGlobalConcurrency(1);
}
