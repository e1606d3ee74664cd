/**
 * The refresh processor: one job per user, payload { userUlid }. It calls the refresh use case and
 * maps the outcome onto BullMQ (the single place that turns outcomes into retries or
 * UnrecoverableError). The database decides whether a refresh is due; the job only wakes us up.
 */
import { UnrecoverableError, Worker, type Job, type Queue } from "bullmq";
import { ERROR_CODES, TokenDecryptError } from "../src/core/errors.js";
import type { TokenMeta, TokenRecord, TokenStore } from "../src/core/ports.js";
import type { Clock } from "../src/core/types.js";
import { componentLogger, type Logger } from "../src/log/logger.js";
import { PRIORITY, type RefreshJobData } from "../src/queue/names.js";
import { checkRefreshJob, REFRESH_JOB_SHAPE } from "../src/queue/refresh-job-data.js";
import { scheduleRefresh } from "../src/queue/refresh-queue.js";
import type { Refresher } from "../src/refresh/refresher.js";

export interface RefreshJobResult {
  /** What happened; never a token (return values are visible in Bull Board). */
  result: "refreshed" | "force_refreshed" | "by_other" | "not_needed" | "not_due" | "missing" | "reconnect_required";
  version?: number;
}

/** A job that fires this close to the row's nextRefreshAt counts as due (clock skew between dynos). */
const DUE_SLACK_MS = 2_000;

export function createRefreshProcessor(deps: {
  store: TokenStore;
  refresher: Refresher;
  queue: Queue<RefreshJobData>;
  logger: Logger;
  clock: Clock;
}) {
  const log = componentLogger(deps.logger, "refreshRequests");

  async function scheduleNext(job: Job<RefreshJobData>, meta: TokenMeta): Promise<void> {
    if (meta.status !== "ACTIVE") return;
    // This job still holds the user's deduplication key; release it or the next add is swallowed.
    await job.removeDeduplicationKey();
    await scheduleRefresh(deps.queue, meta.userUlid, meta.nextRefreshAt, meta.lastUsedAt, deps.clock);
  }

  return async function processRefresh(job: Job<RefreshJobData>): Promise<RefreshJobResult> {
    const checked = checkRefreshJob(job);
    if (!checked.ok) {
      // Not written by our producers: fail it for good, before any read or call. The message names the
      // problem, never a value (Bull Board shows it; a wrong job may carry a token anywhere).
      log.warn({ jobId: shownJobId(job.id), problem: checked.problem }, "refresh job refused: invalid job data");
      throw new UnrecoverableError(`${ERROR_CODES.invalidInput}: ${checked.problem}; expected ${REFRESH_JOB_SHAPE}`);
    }
    const { userUlid } = checked;
    let token: TokenRecord | null;
    try {
      token = await deps.store.get(userUlid);
    } catch (err) {
      // A row no key can decrypt will not get better by retrying; anything else (database down) will.
      if (err instanceof TokenDecryptError) throw new UnrecoverableError(ERROR_CODES.decryptFailed);
      throw err;
    }
    if (!token) return { result: "missing" };
    if (token.status === "RECONNECT_REQUIRED") return { result: "reconnect_required" };
    const onDemand = job.priority === PRIORITY.onDemand;
    const now = deps.clock();
    if (!onDemand && token.nextRefreshAt.getTime() > now.getTime() + DUE_SLACK_MS) {
      // Refreshed elsewhere meanwhile (on demand, another dyno): just wake up again when it is due.
      await scheduleNext(job, token);
      return { result: "not_due" };
    }
    const outcome = await deps.refresher.refresh({
      userUlid,
      trigger: onDemand ? "manual" : "worker",
      force: onDemand,
      observedVersion: token.version,
      knownToken: token,
    });
    if (outcome.ok) {
      log.info({ userUlid, jobId: job.id, how: outcome.how }, "refresh job done");
      // The outcome carries the row as written (next refresh time included): no need to read it again.
      await scheduleNext(job, outcome.token);
      return { result: outcome.how, version: outcome.token.version };
    }
    const { error } = outcome;
    const pauseMs = queueWidePauseMs(error.code, outcome.retryAfterMs);
    if (pauseMs !== null) {
      // Not this user's problem: Cal.com's window, our shared budget or our configuration. Pause the
      // whole queue (every worker process) until it may have changed; no attempt is used up.
      log.warn({ userUlid, code: error.code, pauseMs }, "refresh queue paused");
      await deps.queue.rateLimit(pauseMs);
      throw Worker.RateLimitError();
    }
    if (error.code === ERROR_CODES.reconnectRequired) return { result: "reconnect_required" };
    if (!error.retryable) throw new UnrecoverableError(error.code);
    // BullMQ retries with jittered exponential backoff; after the last attempt the sweep picks the
    // user up again at the row's nextRefreshAt.
    throw new Error(error.code);
  };
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
