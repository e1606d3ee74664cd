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
    const { userUlid } = job.data;
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
    if (error.code === ERROR_CODES.rateLimited) {
      // Pause the whole queue until Cal.com's window resets; this does not use up an attempt.
      await deps.queue.rateLimit(outcome.retryAfterMs ?? 60_000);
      throw Worker.RateLimitError();
    }
    if (error.code === ERROR_CODES.reconnectRequired) return { result: "reconnect_required" };
    if (!error.retryable) throw new UnrecoverableError(error.code);
    // BullMQ retries with jittered exponential backoff; after the last attempt the sweep picks the
    // user up again at the row's nextRefreshAt.
    throw new Error(error.code);
  };
}
