/**
 * What one refresh attempt leaves for the operator (docs/operations.md#bull-board): a line in the
 * job's log, and for a failed attempt the error message Bull Board shows first — our code, Cal.com's
 * status and error code, the attempt number out of the maximum, and when the next try is:
 *
 *   calcom.transient: Cal.com 503 (ServiceUnavailableException) — attempt 3/8, next try 2026-11-28T10:00:05Z
 *
 * Built from codes, statuses, counts and times only: never a token, a body or a job's data.
 * Expected failures are thrown without a stack, so BullMQ stores no stack trace for them (it keeps
 * `err.stack` only when there is one); an unexpected error keeps its trace.
 */
import { type Job, UnrecoverableError } from "bullmq";
import type { RefreshOutcome } from "../src/refresh/types.js";

type FailedOutcome = Extract<RefreshOutcome, { ok: false }>;

/** This attempt's number (1-based) and the job's maximum. */
export interface AttemptNumber {
  n: number;
  max: number;
}

export function attemptOf(job: Pick<Job, "attemptsMade" | "opts">): AttemptNumber {
  return { n: job.attemptsMade + 1, max: Math.max(1, job.opts.attempts ?? 1) };
}

export function isLastAttempt(at: AttemptNumber): boolean {
  return at.n >= at.max;
}

/** `2026-11-28T10:00:05Z`: to the second, as an operator reads it. */
export function isoSeconds(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `calcom.transient: Cal.com 503 (ServiceUnavailableException)`, or our code and catalogue message. */
export function whatFailed(outcome: FailedOutcome): string {
  const { error, calcom } = outcome;
  if (calcom && calcom.status !== null) return `${error.code}: Cal.com ${calcom.status}${calcom.code ? ` (${calcom.code})` : ""}`;
  return `${error.code}: ${error.message}`;
}

/** A failed attempt that BullMQ retries at `nextTry`. */
export function retryMessage(what: string, at: AttemptNumber, nextTry: Date): string {
  return `${what} — attempt ${at.n}/${at.max}, next try ${isoSeconds(nextTry)}`;
}

/** The job's last attempt failed: it goes to Failed, and the sweep queues a new job for the user. */
export function lastAttemptMessage(what: string, at: AttemptNumber, dueAt: Date | null): string {
  const when = dueAt ? `at ${isoSeconds(dueAt)}` : "on its next run";
  return `${what} — attempt ${at.n}/${at.max}, no retries left; the sweep queues the user again ${when}`;
}

/** A failure that retrying cannot fix. */
export function notRetriedMessage(what: string, at: AttemptNumber): string {
  return `${what} — attempt ${at.n}/${at.max}, not retried`;
}

/**
 * An expected, retryable failure. `retryDelayMs` is when the next attempt runs: the worker's backoff
 * strategy returns it (refreshBackoffStrategy), so the time in the message is the time BullMQ uses.
 */
export class RefreshAttemptError extends Error {
  override readonly name = "RefreshAttemptError";
  constructor(
    message: string,
    readonly retryDelayMs: number,
  ) {
    super(message);
    this.stack = "";
  }
}

/** An expected failure that must not be retried (BullMQ fails the job at once), without a stack. */
export function finalFailure(message: string): UnrecoverableError {
  const err = new UnrecoverableError(message);
  err.stack = "";
  return err;
}

/**
 * The refresh worker's `settings.backoffStrategy`: the delay a RefreshAttemptError carries (the row's
 * own retry time, so job and row agree), else `fallback` (an unexpected error).
 */
export function refreshBackoffStrategy(fallback: (attemptsMade: number) => number) {
  return (attemptsMade: number, _type?: string, err?: Error): number =>
    err instanceof RefreshAttemptError ? Math.max(0, err.retryDelayMs) : fallback(attemptsMade);
}

/** Appends a line to the job's log (Bull Board's Logs tab); best effort: a failed write changes nothing. */
export async function logAttempt(job: Pick<Job, "log">, line: string): Promise<void> {
  await job.log(line).catch(() => undefined);
}
