/**
 * The catalogue of failures a caller can receive: one code, one message and one `retryable` per
 * kind, written once. The refresh use case, the on-demand module and the worker all build their
 * failures here, so the same situation always reads the same way in logs, results and Bull Board.
 * Messages never contain token values: details are statuses, codes and reasons only.
 */
import type { CalRefreshResult } from "./calcom-result.js";
import { AppError, ERROR_CODES, TokenDecryptError, type ErrorCode } from "./errors.js";
import { TimeoutError } from "./timeout.js";

/** A failure as callers see it (the public `TokenRefreshResult.error` has this shape). */
export interface Failure {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export const FAILURES = {
  invalidUserUlid: { code: ERROR_CODES.invalidUserUlid, message: "userUlid must be a 26-character ULID", retryable: false },
  notFound: { code: ERROR_CODES.notFound, message: "no Cal.com tokens stored for this user", retryable: false },
  exists: { code: ERROR_CODES.exists, message: "tokens already stored for this user (left unchanged)", retryable: false },
  decryptFailed: {
    code: ERROR_CODES.decryptFailed,
    message: "stored tokens could not be decrypted (wrong key or corrupt row)",
    retryable: false,
  },
  reconnectRequired: { code: ERROR_CODES.reconnectRequired, message: "the user must reconnect their Cal.com account", retryable: false },
  storeUnavailable: { code: ERROR_CODES.storeUnavailable, message: "token storage is unavailable", retryable: true },
  queueUnavailable: { code: ERROR_CODES.queueUnavailable, message: "the refresh queue is unavailable", retryable: true },
  leaseTimeout: { code: ERROR_CODES.leaseTimeout, message: "another process holds the refresh lease", retryable: true },
  waitTimeout: {
    code: ERROR_CODES.waitTimeout,
    message: "the queued refresh did not finish in time; it is still queued",
    retryable: true,
  },
  queuedRefreshFailed: { code: ERROR_CODES.refreshFailed, message: "queued refresh failed", retryable: true },
  rateLimited: { code: ERROR_CODES.rateLimited, message: "Cal.com rate limit reached", retryable: true },
  calcomTimeout: { code: ERROR_CODES.timeout, message: "Cal.com did not answer in time", retryable: true },
  calcomTransient: { code: ERROR_CODES.transient, message: "Cal.com is unavailable", retryable: true },
  calcomMalformed: { code: ERROR_CODES.malformed, message: "Cal.com answered with an unusable body", retryable: true },
  calcomConfig: { code: ERROR_CODES.calcomConfig, message: "Cal.com rejected the client configuration", retryable: true },
  callsSuspended: {
    code: ERROR_CODES.calcomConfig,
    message: "token calls are suspended fleet-wide after Cal.com refused the client configuration; a probe retries",
    retryable: true,
  },
  budgetExhausted: {
    code: ERROR_CODES.budgetExhausted,
    message: "the shared Cal.com token-call budget is used up for now",
    retryable: true,
  },
  refreshInProgress: { code: ERROR_CODES.refreshInProgress, message: "a refresh is in progress; try again shortly", retryable: true },
  coolingDown: { code: ERROR_CODES.transient, message: "Cal.com failed recently for this user; not calling again yet", retryable: true },
  timeout: { code: ERROR_CODES.operationTimeout, message: "an operation timed out", retryable: true },
  platformClientMissing: {
    code: ERROR_CODES.clientNotConfigured,
    message: "no Cal.com Platform client is configured (CAL_CLIENT_ID, CAL_CLIENT_SECRET): managed users cannot be refreshed",
    retryable: false,
  },
  oauth2AppMissing: {
    code: ERROR_CODES.clientNotConfigured,
    message: "no Cal.com OAuth 2.0 app is configured (CAL_OAUTH_CLIENT_ID): oauth2 users cannot be refreshed or connected",
    retryable: false,
  },
  codeRejected: {
    code: ERROR_CODES.codeRejected,
    message:
      "Cal.com refused the authorization code (unknown, expired, already used, or issued for another redirect URI or PKCE challenge): start the connection again",
    retryable: false,
  },
} as const satisfies Record<string, Failure>;

export type FailureKind = keyof typeof FAILURES;

/** The catalogue entry for `kind`, with an optional detail (a status, a code) appended to its message. */
export function failure(kind: FailureKind, detail?: string): Failure {
  const f = FAILURES[kind];
  return { code: f.code, message: detail ? `${f.message} (${detail})` : f.message, retryable: f.retryable };
}

/**
 * The one mapping from a thrown error to a failure. Our own errors keep their code; a timeout is a
 * TimeoutError value; anything else (a driver error from Postgres or Redis) becomes `fallback`,
 * because its message may carry connection details and must not reach a caller.
 */
export function failureFromError(err: unknown, fallback: FailureKind): Failure {
  if (err instanceof TokenDecryptError) return failure("decryptFailed");
  if (err instanceof TimeoutError) return { code: err.code, message: err.message, retryable: true };
  if (err instanceof AppError) return { code: err.code, message: err.message, retryable: err.retryable };
  return failure(fallback);
}

/** A code stored on the row by an earlier attempt, if it is one of ours (else a plain transient). */
function storedCode(lastFailureCode: string | null): ErrorCode {
  const known = Object.values(ERROR_CODES) as string[];
  return lastFailureCode !== null && known.includes(lastFailureCode) ? (lastFailureCode as ErrorCode) : ERROR_CODES.transient;
}

/**
 * Another process's refresh attempt failed while we waited for its lease: we report its failure (the
 * code it stored on the row) instead of calling Cal.com again at once.
 */
export function concurrentAttemptFailure(lastFailureCode: string | null): Failure {
  return { code: storedCode(lastFailureCode), message: "a concurrent refresh attempt just failed", retryable: true };
}

/** The user is inside the cool-down after a failure: the stored failure, without calling Cal.com again. */
export function coolingDownFailure(lastFailureCode: string | null): Failure {
  return { code: storedCode(lastFailureCode), message: FAILURES.coolingDown.message, retryable: true };
}

/** The failure a non-refreshed Cal.com answer means for the caller (rejections are settled elsewhere). */
export function failureFromCalcom(result: Exclude<CalRefreshResult, { kind: "refreshed" | "rejected" }>): Failure {
  switch (result.kind) {
    case "rate_limited":
      return failure("rateLimited");
    case "transient":
      return result.reason === "timeout"
        ? failure("calcomTimeout", result.status ? String(result.status) : undefined)
        : failure("calcomTransient", `${result.reason}${result.status ? ` ${result.status}` : ""}`);
    case "malformed":
      return failure("calcomMalformed", String(result.status));
    case "config_error":
      return failure("calcomConfig", String(result.status));
  }
}
