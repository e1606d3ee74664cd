/**
 * Queue names and job names. Every key lives under QUEUE_PREFIX (which may be a Redis Cluster hash
 * tag such as `{caltok}`, so one queue's keys share a slot).
 */
export const QUEUES = {
  /** One job per user: payload is the user ULID only; deduplicated per user. */
  refresh: "token-refresh",
  /** The sweep, driven by a job scheduler: one run per tick across every process. */
  sweep: "token-sweep",
  /** Signed webhooks to the web app, retried. */
  events: "token-events",
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const JOB_NAMES = {
  refresh: "refresh",
  sweep: "sweep",
  deliver: "deliver",
} as const;

export const SWEEP_SCHEDULER_ID = "token-sweep";

/** Job priorities (src/core/priority.ts), re-exported where the queue code has always found them. */
export { PRIORITY } from "../core/priority.js";

/**
 * The refresh worker's BullMQ limiter takes this many jobs per CAL_REFRESH_RATE_PER_MINUTE: it counts
 * jobs, not calls, and under the refresh policy most job wakes make none (an idle user re-planned, about
 * 80 % in the capacity simulation). The shared call budget (src/fleet/call-budget.ts) limits the calls.
 */
export const JOBS_PER_BUDGETED_CALL = 4;

/** Deduplication id for a user's refresh job (no ':' — BullMQ ids must not contain it). */
export function refreshDedupId(userUlid: string): string {
  return `refresh-${userUlid}`;
}

/** Payload of a refresh job: the user ULID and nothing else (docs/architecture.md#invariant-6-no-secret-leaves-the-row). */
export interface RefreshJobData {
  userUlid: string;
}
