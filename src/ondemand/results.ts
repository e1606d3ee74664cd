/**
 * Builders of the public `TokenRefreshResult` (src/ondemand/types.ts). Every failure in it is a
 * catalogue entry (src/core/failures.ts), so the same situation always reads the same way.
 */
import { ERROR_CODES, AppError } from "../core/errors.js";
import { failure, failureFromError, type Failure, type FailureKind } from "../core/failures.js";
import { isStillValid } from "../core/policy.js";
import type { TokenRecord } from "../core/ports.js";
import type { Clock } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import type { Refresher } from "../refresh/refresher.js";
import type { RefreshOutcome } from "../refresh/types.js";
import type { CalTokenInfo, TokenRefreshResult } from "./types.js";

/** The fields of a stored token that a caller gets to see. */
export type HandedOutToken = Pick<TokenRecord, "userUlid" | "accessToken" | "accessTokenExpiresAt" | "refreshTokenExpiresAt" | "status">;

export function toInfo(t: HandedOutToken): CalTokenInfo {
  return {
    userUlid: t.userUlid,
    accessToken: t.accessToken,
    accessTokenExpiresAt: t.accessTokenExpiresAt,
    refreshTokenExpiresAt: t.refreshTokenExpiresAt,
    status: t.status,
  };
}

export function tokenResult(token: HandedOutToken, refreshed: boolean): TokenRefreshResult {
  return { success: true, refreshed, tokenInfo: toInfo(token) };
}

/** A queued refresh was accepted (not waited for): no token to hand out yet. */
export function acceptedResult(): TokenRefreshResult {
  return { success: true, refreshed: false };
}

export function failedResult(error: Failure & { retryAfterMs?: number }): TokenRefreshResult {
  return { success: false, refreshed: false, error };
}

/** A failed result with the catalogue entry for `kind`. */
export function failedWith(kind: FailureKind, detail?: string): TokenRefreshResult {
  return failedResult(failure(kind, detail));
}

/** The catalogue entry for `kind` as an AppError, for the operations that answer by throwing. */
export function failureError(kind: FailureKind): AppError {
  const f = failure(kind);
  return new AppError(f.code, f.message, { retryable: f.retryable });
}

/**
 * A thrown storage error as a coded AppError, for the operations that answer by throwing. The driver's
 * error is not attached as `cause`: its message can carry connection details and SQL source frames.
 */
export function storeFailureError(err: unknown): AppError {
  const f = failureFromError(err, "storeUnavailable");
  return new AppError(f.code, f.message, { retryable: f.retryable });
}

/**
 * Maps a refresher outcome to the public result; a still-valid token survives a failed refresh
 * (docs/architecture.md#invariant-4-transient-failures-back-off).
 */
export function resultFromOutcome(outcome: RefreshOutcome, now: Date): TokenRefreshResult {
  if (outcome.ok) return tokenResult(outcome.token, outcome.how === "refreshed" || outcome.how === "force_refreshed");
  // A failed call wrote its retry time to the row (the cool-down every process obeys): say when that is.
  const retryAfterMs = outcome.retryAfterMs ?? (outcome.retryAt ? Math.max(1, outcome.retryAt.getTime() - now.getTime()) : undefined);
  const error = retryAfterMs === undefined ? outcome.error : { ...outcome.error, retryAfterMs };
  const { token } = outcome;
  // Any failure except a dead grant or an unreadable row leaves a still-valid token usable (a wrong
  // client secret after a deploy must not take down request paths while tokens are still good).
  const tokenUsable = error.code !== ERROR_CODES.reconnectRequired && error.code !== ERROR_CODES.decryptFailed;
  if (token && token.status === "ACTIVE" && tokenUsable && isStillValid(token.accessTokenExpiresAt, now)) {
    return { ...tokenResult(token, false), error };
  }
  return failedResult(error);
}

/**
 * Reading the user's row failed. An unreadable row is final; otherwise the database is down, and a
 * pair rotated while it was down (held by the refresher) is still usable from memory.
 */
export function resultFromStoreError(
  deps: { refresher: Pick<Refresher, "heldPair">; clock: Clock; log: Logger },
  userUlid: string,
  err: unknown,
): TokenRefreshResult {
  if (err instanceof AppError && err.code === ERROR_CODES.decryptFailed) {
    deps.log.error({ userUlid, err }, "stored tokens could not be decrypted");
    return failedWith("decryptFailed");
  }
  const held = deps.refresher.heldPair(userUlid);
  if (held && isStillValid(held.accessTokenExpiresAt, deps.clock())) {
    return tokenResult({ userUlid, ...held, status: "ACTIVE" }, false);
  }
  deps.log.warn({ userUlid, err }, "token storage unavailable");
  return failedWith("storeUnavailable");
}
