/**
 * `requestCalTokenRefresh`: a refresh through the worker queue (priority 1; an existing delayed job
 * is promoted, not duplicated). With `wait`, the result is read from the database once the job
 * finished; the wait is bounded and a timeout is a TimeoutError value (src/core/timeout.ts).
 */
import type { Job } from "bullmq";
import { ERROR_CODES } from "../core/errors.js";
import type { TokenMeta, TokenRecord, TokenStore } from "../core/ports.js";
import { TimeoutError } from "../core/timeout.js";
import type { Clock } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { Logger } from "../log/logger.js";
import { PRIORITY, type RefreshJobData } from "../queue/names.js";
import type { RefreshProducer } from "../queue/producer.js";
import type { Refresher } from "../refresh/refresher.js";
import { acceptedResult, failedWith, resultFromStoreError, tokenResult } from "./results.js";
import type { TokenRefreshResult } from "./types.js";
import type { UserMemory } from "./user-memory.js";

export interface RequestRefreshOptions {
  /** Wait for the worker to finish (default false: just queue it). */
  wait?: boolean;
  /** Upper bound on the wait (default 15 s). */
  timeoutMs?: number;
}

export interface QueuedRefreshDeps {
  store: TokenStore;
  /** Read only for a held pair when the database is down. */
  refresher: Pick<Refresher, "heldPair">;
  memory: UserMemory;
  /** The `onDemand` component logger. */
  log: Logger;
  clock: Clock;
  /** The refresh queue; without it requestCalTokenRefresh answers queue.unavailable. */
  producer?: RefreshProducer;
}

export type RequestCalTokenRefresh = (userUlid: string, opts?: RequestRefreshOptions) => Promise<TokenRefreshResult>;

const DEFAULT_WAIT_MS = 15_000;

export function createQueuedRefresh(deps: QueuedRefreshDeps): RequestCalTokenRefresh {
  const { log } = deps;

  /** Queues the refresh and, with `wait`, waits for the worker; "accepted" when not waiting. */
  async function viaQueue(
    producer: RefreshProducer,
    ulid: string,
    before: TokenMeta,
    opts: RequestRefreshOptions,
  ): Promise<{ finished: "accepted" | "completed" | "failed"; job: Job<RefreshJobData> }> {
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_WAIT_MS);
    let job = await producer.requestNow(ulid);
    log.info({ userUlid: ulid, jobId: job.id, wait: opts.wait === true }, "refresh requested through the queue");
    if (!opts.wait) return { finished: "accepted", job };
    let finished = await producer.waitFor(job, Math.max(1, deadline - Date.now()));
    // We joined a scheduled job that was already running: it may have found nothing due. Ask again.
    if (job.priority !== PRIORITY.onDemand && (await deps.store.getMeta(ulid).catch(() => null))?.version === before.version) {
      job = await producer.requestNow(ulid);
      finished = await producer.waitFor(job, Math.max(1, deadline - Date.now()));
    }
    return { finished, job };
  }

  /** What the worker left in the database (the source of truth for the result). */
  async function readResult(
    producer: RefreshProducer,
    ulid: string,
    before: TokenMeta,
    queued: { finished: "completed" | "failed"; job: Job<RefreshJobData> },
  ): Promise<TokenRefreshResult> {
    const { finished } = queued;
    let token: TokenRecord | null;
    try {
      token = await deps.store.get(ulid);
    } catch (err) {
      return deps.memory.handOut(resultFromStoreError(deps, ulid, err));
    }
    if (!token) return failedWith("notFound");
    const refreshed = token.version > before.version;
    if (token.status === "RECONNECT_REQUIRED") return failedWith("reconnectRequired");
    if (finished === "failed" && !refreshed) {
      // The worker may have failed before writing anything to the row (e.g. it cannot decrypt it).
      const code = token.lastFailureCode ?? (await producer.failureCode(queued.job).catch(() => null));
      if (code === ERROR_CODES.decryptFailed) return failedWith("decryptFailed");
      return failedWith("queuedRefreshFailed", code ?? "unknown");
    }
    return deps.memory.handOut(tokenResult(token, refreshed));
  }

  return async function requestCalTokenRefresh(userUlid, opts = {}) {
    if (!isUlid(userUlid)) return failedWith("invalidUserUlid");
    const ulid = normalizeUlid(userUlid);
    const producer = deps.producer;
    if (!producer) return failedWith("queueUnavailable");
    let before: TokenMeta | null;
    try {
      before = await deps.store.getMeta(ulid);
    } catch (err) {
      return deps.memory.handOut(resultFromStoreError(deps, ulid, err));
    }
    if (!before) return failedWith("notFound");
    if (before.status === "RECONNECT_REQUIRED") return failedWith("reconnectRequired");
    let queued: Awaited<ReturnType<typeof viaQueue>>;
    try {
      queued = await viaQueue(producer, ulid, before, opts);
    } catch (err) {
      if (err instanceof TimeoutError) return failedWith("waitTimeout");
      log.warn({ userUlid: ulid, err }, "refresh queue unavailable");
      return failedWith("queueUnavailable");
    }
    const { finished, job } = queued;
    return finished === "accepted" ? acceptedResult() : readResult(producer, ulid, before, { finished, job });
  };
}
