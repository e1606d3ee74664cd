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

/** Job priorities: 1 is the highest in BullMQ; unprioritised (0) jobs would jump both, so never use 0. */
export const PRIORITY = {
  onDemand: 1,
  /** Users who used their token recently (docs/architecture.md#invariant-8-rate-budget). */
  active: 5,
  background: 10,
  /** Users idle for a long time: refreshed when the budget allows. */
  idle: 20,
} as const;

/** Deduplication id for a user's refresh job (no ':' — BullMQ ids must not contain it). */
export function refreshDedupId(userUlid: string): string {
  return `refresh-${userUlid}`;
}

/** Payload of a refresh job: the user ULID and nothing else (docs/architecture.md#invariant-6-no-secret-leaves-the-row). */
export interface RefreshJobData {
  userUlid: string;
}
