/**
 * The refresh processor: one job per user, payload { userUlid }. It calls the refresh use case and
 * maps the outcome onto BullMQ (the single place that turns outcomes into retries or
 * UnrecoverableError). The database decides whether a refresh is due; the job only wakes us up.
 *
 * A failed attempt is retried at the time the failure bookkeeping wrote to the row, so the job and
 * the row agree: the retry finds the user due and counts as the next attempt, and after the last
 * one the job lands in Failed while the sweep queues the user again (docs/operations.md#bull-board).
 *
 * A scheduled job decides when it runs, by the refresh policy (src/core/grant-policy.ts,
 * docs/architecture.md#scheduling): it refreshes an active user (keep fresh) or an idle OAuth2 user
 * whose refresh token is near its 30-day expiry (keep alive); for any other idle user it makes no call,
 * writes the re-planned time to the row (no new version, no audit row) and sleeps until then.
 */
import { DelayedError, Worker, type Job, type Queue } from "bullmq";
import { ERROR_CODES, TokenDecryptError } from "../src/core/errors.js";
import { failureFromError } from "../src/core/failures.js";
import { decideScheduled, type GrantPolicy, priorityForRow, type RefreshPlan } from "../src/core/grant-policy.js";
import type { TokenMeta, TokenRecord, TokenStore } from "../src/core/ports.js";
import type { Clock, Rand } from "../src/core/types.js";
import { componentLogger, type Logger } from "../src/log/logger.js";
import { PRIORITY, type RefreshJobData } from "../src/queue/names.js";
import { checkRefreshJob, REFRESH_JOB_SHAPE } from "../src/queue/refresh-job-data.js";
import { scheduleRefresh } from "../src/queue/refresh-queue.js";
import type { Refresher } from "../src/refresh/refresher.js";
import type { RefreshOutcome } from "../src/refresh/types.js";
import {
  type AttemptNumber,
  attemptOf,
  finalFailure,
  isLastAttempt,
  isoSeconds,
  lastAttemptMessage,
  logAttempt,
  notRetriedMessage,
  RefreshAttemptError,
  retryMessage,
  whatFailed,
} from "./refresh-report.js";

export interface RefreshJobResult {
  /** What happened; never a token (return values are visible in Bull Board). */
  result: "refreshed" | "force_refreshed" | "by_other" | "not_needed" | "not_due" | "idle" | "missing" | "reconnect_required";
  version?: number;
}

/** A job that fires this close to the row's nextRefreshAt counts as due (clock skew between dynos). */
const DUE_SLACK_MS = 2_000;

type FailedOutcome = Extract<RefreshOutcome, { ok: false }>;

export interface RefreshProcessorDeps {
  store: TokenStore;
  refresher: Refresher;
  queue: Queue<RefreshJobData>;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  /** The refresh policy: who is kept fresh, kept alive or parked. */
  policy: GrantPolicy;
  /**
   * The worker's backoff (BullMQ's attemptsMade → ms), used when the row gives no later retry time
   * (the user is already due), so the time in the failure message is the time BullMQ uses.
   */
  retryDelayMs?: (attemptsMade: number) => number;
}

interface Ctx extends RefreshProcessorDeps {
  log: Logger;
  fallbackDelayMs: (attemptsMade: number) => number;
}

export function createRefreshProcessor(deps: RefreshProcessorDeps) {
  const ctx: Ctx = {
    ...deps,
    log: componentLogger(deps.logger, "refreshRequests"),
    fallbackDelayMs: deps.retryDelayMs ?? ((n) => Math.min(5_000 * 2 ** Math.max(0, n - 1), 300_000)),
  };
  return (job: Job<RefreshJobData>, bullToken?: string): Promise<RefreshJobResult> => processRefresh(ctx, job, bullToken);
}

async function processRefresh(ctx: Ctx, job: Job<RefreshJobData>, bullToken: string | undefined): Promise<RefreshJobResult> {
  const at = attemptOf(job);
  const checked = checkRefreshJob(job);
  if (!checked.ok) {
    // Not written by our producers: fail it for good, before any read or call. The message names the
    // problem, never a value (Bull Board shows it; a wrong job may carry a token anywhere).
    ctx.log.warn({ jobId: shownJobId(job.id), problem: checked.problem }, "refresh job refused: invalid job data");
    throw finalFailure(`${ERROR_CODES.invalidInput}: ${checked.problem}; expected ${REFRESH_JOB_SHAPE}`);
  }
  const { userUlid } = checked;
  const token = await readRow(ctx, job, at, userUlid);
  if (!token) return done(job, at, { result: "missing" });
  if (token.status === "RECONNECT_REQUIRED") return done(job, at, { result: "reconnect_required" });
  const onDemand = job.priority === PRIORITY.onDemand;
  if (!onDemand) {
    const decision = decideScheduled(token, ctx.clock(), ctx.policy, ctx.rand, DUE_SLACK_MS);
    if (!decision.refresh && decision.reason === "not_due") return notDue(ctx, job, at, token, bullToken, decision.priority);
    if (!decision.refresh) return idle(ctx, job, at, token, decision.plan);
    ctx.log.debug({ userUlid, jobId: job.id, purpose: decision.purpose }, "refresh job due");
  }
  const outcome = await ctx.refresher.refresh({
    userUlid,
    trigger: onDemand ? "manual" : "worker",
    force: onDemand,
    observedVersion: token.version,
    knownToken: token,
  });
  if (outcome.ok) {
    ctx.log.info({ userUlid, jobId: job.id, how: outcome.how }, "refresh job done");
    // The outcome carries the row as written (next refresh time included): no need to read it again.
    await scheduleNext(ctx, job, outcome.token, priorityForRow(outcome.token, ctx.clock(), ctx.policy));
    return done(job, at, { result: outcome.how, version: outcome.token.version });
  }
  const { error } = outcome;
  const pauseMs = queueWidePauseMs(error.code, outcome.retryAfterMs);
  if (pauseMs !== null) {
    // Not this user's problem: Cal.com's window, our shared budget or our configuration. Pause the
    // whole queue (every worker process) until it may have changed; no attempt is used up.
    ctx.log.warn({ userUlid, code: error.code, pauseMs }, "refresh queue paused");
    await logAttempt(job, `${whatFailed(outcome)} — the whole queue pauses ${Math.ceil(pauseMs / 1000)} s; no attempt used`);
    await ctx.queue.rateLimit(pauseMs);
    throw Worker.RateLimitError();
  }
  if (error.code === ERROR_CODES.reconnectRequired) return done(job, at, { result: "reconnect_required" });
  const failed = failedAttempt(ctx, job, at, outcome);
  await logAttempt(job, failed.message);
  throw failed;
}

async function readRow(ctx: Ctx, job: Job<RefreshJobData>, at: AttemptNumber, userUlid: string): Promise<TokenRecord | null> {
  try {
    return await ctx.store.get(userUlid);
  } catch (err) {
    // A row no key can decrypt will not get better by retrying; anything else (database down) will.
    const error = failureFromError(err, "storeUnavailable");
    if (err instanceof TokenDecryptError) throw finalFailure(notRetriedMessage(`${error.code}: ${error.message}`, at));
    ctx.log.warn({ userUlid, jobId: job.id, err }, "refresh job could not read the token row");
    const failed = failedAttempt(ctx, job, at, { ok: false, token: null, error });
    await logAttempt(job, failed.message);
    throw failed;
  }
}

/**
 * The user is idle and nothing is due for them: no call. The re-planned time goes to the row (a
 * compare-and-swap on the version that does not bump it and writes no audit row) and the job sleeps
 * until then. If the row changed meanwhile (a refresh, a failure, a reconnect, the user came back),
 * its own time stands.
 */
async function idle(
  ctx: Ctx,
  job: Job<RefreshJobData>,
  at: AttemptNumber,
  token: TokenRecord,
  plan: RefreshPlan,
): Promise<RefreshJobResult> {
  const idleSince = new Date(ctx.clock().getTime() - ctx.policy.keepFreshWindowMs);
  const moved = await ctx.store.reschedule({ userUlid: token.userUlid, expectedVersion: token.version, nextRefreshAt: plan.at, idleSince });
  if (!moved) {
    const current = await ctx.store.getMeta(token.userUlid);
    if (current) await scheduleNext(ctx, job, current, priorityForRow(current, ctx.clock(), ctx.policy));
    return done(job, at, { result: "not_due" }, current ? ` (the row changed; next refresh ${isoSeconds(current.nextRefreshAt)})` : "");
  }
  ctx.log.info(
    { userUlid: token.userUlid, jobId: job.id, purpose: plan.purpose, nextRefreshAt: plan.at },
    "user idle: no refresh, re-planned",
  );
  await scheduleNext(ctx, job, { ...token, nextRefreshAt: plan.at }, plan.priority);
  const why = plan.purpose === "parked" ? "parked until" : "keep-alive at";
  return done(job, at, { result: "idle" }, ` (not used for ${usedAgo(token, ctx.clock())}; ${why} ${isoSeconds(plan.at)})`);
}

/** How long ago a request path last used the token, for the job's log line. */
function usedAgo(token: TokenRecord, now: Date): string {
  if (token.lastUsedAt === null) return "as long as we know";
  const minutes = Math.floor((now.getTime() - token.lastUsedAt.getTime()) / 60_000);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h`;
}

/** The row is not due: another process refreshed meanwhile, or another attempt failed and set a later retry. */
async function notDue(
  ctx: Ctx,
  job: Job<RefreshJobData>,
  at: AttemptNumber,
  token: TokenRecord,
  bullToken: string | undefined,
  priority: number,
): Promise<RefreshJobResult> {
  const dueAt = isoSeconds(token.nextRefreshAt);
  if (job.attemptsMade > 0 && token.firstFailureAt !== null && bullToken) {
    // A retry whose user is still failing, pushed later by another attempt (a request path): follow
    // the row's time without using up an attempt, so the failure streak keeps its count.
    await logAttempt(job, `attempt ${at.n}/${at.max}: the user is still failing and due at ${dueAt}; waiting until then`);
    await job.moveToDelayed(token.nextRefreshAt.getTime(), bullToken);
    throw new DelayedError();
  }
  // Refreshed elsewhere meanwhile (on demand, another dyno): just wake up again when it is due.
  await scheduleNext(ctx, job, token, priority);
  return done(job, at, { result: "not_due" }, ` (next refresh ${dueAt})`);
}

async function scheduleNext(ctx: Ctx, job: Job<RefreshJobData>, meta: TokenMeta, priority: number): Promise<void> {
  if (meta.status !== "ACTIVE") return;
  // This job still holds the user's deduplication key; release it or the next add is swallowed.
  await job.removeDeduplicationKey();
  await scheduleRefresh(ctx.queue, meta.userUlid, meta.nextRefreshAt, priority, ctx.clock, { keyReleased: true });
}

/**
 * The error BullMQ stores for a failed attempt (its message is what Bull Board shows first). A retry
 * runs at the row's retry time when that is ahead (so the retry finds the user due), else after the
 * worker's backoff; after the last attempt the sweep queues the user again at the row's time.
 */
function failedAttempt(ctx: Ctx, job: Job<RefreshJobData>, at: AttemptNumber, outcome: FailedOutcome): Error {
  const what = whatFailed(outcome);
  if (!outcome.error.retryable) return finalFailure(notRetriedMessage(what, at));
  const now = ctx.clock();
  const rowDue = outcome.retryAt ?? outcome.token?.nextRefreshAt ?? null;
  const ahead = rowDue && rowDue.getTime() > now.getTime() ? rowDue : null;
  if (isLastAttempt(at)) return finalFailure(lastAttemptMessage(what, at, ahead));
  const delayMs = ahead ? ahead.getTime() - now.getTime() : ctx.fallbackDelayMs(job.attemptsMade + 1);
  return new RefreshAttemptError(retryMessage(what, at, new Date(now.getTime() + delayMs)), delayMs);
}

/** Logs the attempt's line in the job's log and returns its result. */
async function done(job: Job<RefreshJobData>, at: AttemptNumber, result: RefreshJobResult, note = ""): Promise<RefreshJobResult> {
  const version = result.version !== undefined ? `, version ${result.version}` : "";
  await logAttempt(job, `attempt ${at.n}/${at.max}: ${result.result}${version}${note}`);
  return result;
}

/** When the breaker has no probe time yet (the attempt that opened it), wait its first probe delay. */
const CONFIG_ERROR_PAUSE_MS = 15_000;

/** Failures that concern every user, not this one: how long the whole queue should wait, or null. */
function queueWidePauseMs(code: string, retryAfterMs: number | undefined): number | null {
  if (code === ERROR_CODES.rateLimited) return retryAfterMs ?? 60_000;
  if (code === ERROR_CODES.budgetExhausted) return retryAfterMs ?? 1_000;
  if (code === ERROR_CODES.calcomConfig) return retryAfterMs ?? CONFIG_ERROR_PAUSE_MS;
  return null;
}

/** Our producers' jobs have BullMQ's numeric ids; anything else is not echoed into logs. */
function shownJobId(id: string | undefined): string {
  return id !== undefined && /^[0-9]{1,20}$/.test(id) ? id : "(not a numeric id)";
}
