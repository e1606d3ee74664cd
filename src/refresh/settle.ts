/**
 * Settling one Cal.com answer while holding the user's lease. Every path ends with the lease released
 * (the store's writes release it in the same statement; the others release it explicitly).
 */
import type { CalRefreshResult } from "../core/calcom-result.js";
import { ERROR_CODES } from "../core/errors.js";
import { failureFromCalcom, failureFromError, type Failure } from "../core/failures.js";
import { backoffDelayMs } from "../core/policy.js";
import { type Attempt, failed, failedAfterCall, isRecord, readToken, reconnectRequired, settledByOther } from "./attempt.js";
import { alert, audit, pairChanged } from "./effects.js";
import { afterCall, passGates } from "./gates.js";
import { releaseLease } from "./lease.js";
import { persistPair, type SuccessOutcome } from "./persist.js";
import type { CalcomAnswer, RefreshOutcome } from "./types.js";

/** The refresh call itself, holding the attempt's lease; every path ends with the lease released. */
export async function refreshHoldingLease(a: Attempt): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  let settled = false;
  try {
    const gate = await passGates(a, { checkBreaker: true });
    if (!gate.open) {
      settled = true;
      return gate.outcome;
    }
    // Cal.com already rejected this managed user's refresh token (and the force-refresh that followed
    // failed): presenting it again would only earn another rejection, so force-refresh at once.
    if (token.kind === "managed" && token.refreshTokenRejected && token.calUserId !== null) {
      const outcome = await forceRefresh(a, token.calUserId, gate.probe, "refresh token rejected earlier; force-refreshing");
      settled = true;
      return outcome;
    }
    const result =
      token.kind === "managed" ? await ctx.calcom.refreshManaged(token.refreshToken) : await ctx.calcom.refreshOAuth2(token.refreshToken);
    await afterCall(a, result, gate.probe);
    const outcome = await settle(a, result, "REFRESHED");
    settled = true;
    return outcome;
  } finally {
    // Every settled path already released the lease in its own write; this covers throws.
    if (!settled) await releaseLease(ctx, token.userUlid, a.lease.token);
  }
}

/** Routes one Cal.com answer. `success` says which call produced it (refresh or force-refresh). */
export async function settle(a: Attempt, result: CalRefreshResult, success: SuccessOutcome): Promise<RefreshOutcome> {
  switch (result.kind) {
    case "refreshed":
      return persistPair(a, result.pair, success, { expiry: result.expiry, sentAt: result.sentAt });
    case "rejected":
      if (success === "FORCE_REFRESHED") return settleReconnect(a, `force-refresh rejected (${result.status})`);
      return settleRejection(a, result.status);
    case "rate_limited":
      return settleTransient(a, {
        failure: failureFromCalcom(result),
        mayHaveRotated: false,
        retryAfterMs: result.resetMs,
        calcom: { status: 429 },
      });
    case "transient":
    case "malformed":
      return settleTransient(a, { failure: failureFromCalcom(result), mayHaveRotated: result.mayHaveRotated, calcom: answerOf(result) });
    case "config_error":
      return settleConfigError(a, failureFromCalcom(result), answerOf(result));
  }
}

/** An error code as Cal.com writes them (`ServiceUnavailableException`, `invalid_grant`); anything else is dropped. */
const CALCOM_CODE = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/** Cal.com's status and error code, for the operator (docs/operations.md#bull-board); never a body. */
function answerOf(result: { status: number | null; code?: string }): CalcomAnswer {
  return result.code !== undefined && CALCOM_CODE.test(result.code)
    ? { status: result.status, code: result.code }
    : { status: result.status };
}

/** Our client credentials were refused: nothing about this user changes, an operator must act. */
async function settleConfigError(a: Attempt, error: Failure, calcom: CalcomAnswer): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  await releaseLease(ctx, token.userUlid, a.lease.token);
  ctx.log.error({ userUlid: token.userUlid, status: calcom.status }, "Cal.com refused our client configuration");
  await audit(
    ctx,
    { userUlid: token.userUlid, trigger: a.req.trigger, outcome: "CONFIG_ERROR", errorCode: ERROR_CODES.calcomConfig },
    a.started,
  );
  return failedAfterCall(token, error, { calcom });
}

/**
 * A 400/404 is often a lost race, not a dead grant (docs/architecture.md#invariant-3-race-aware-rejection).
 * Re-read first; if the refresh token is still the one Cal.com rejected, a managed user is recovered
 * with force-refresh, an OAuth2 user must reconnect.
 */
export async function settleRejection(a: Attempt, status: number): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  const current = await readToken(ctx, token.userUlid);
  if (isRecord(current) && current.version !== token.version) {
    await releaseLease(ctx, token.userUlid, a.lease.token);
    return settledByOther(ctx, token.userUlid);
  }
  if (token.kind !== "managed" || token.calUserId === null) return settleReconnect(a, `refresh token rejected (${status})`);
  // The token is dead: mark it (still under our lease) so that no later attempt, whatever happens to
  // this one, presents it again; the next attempt force-refreshes at once.
  await markRejected(a);
  // The force-refresh must also run under the lease (extended to cover it), or a second process could
  // rotate meanwhile; it counts against the call budget like any token call. A closed gate leaves the
  // rejected token in the row, marked: the result is a retryable failure, never a success.
  const gate = await passGates(a, { checkBreaker: false });
  if (!gate.open) return gate.outcome;
  const why = token.rotationUncertain
    ? "refresh token rejected after a lost response; force-refreshing"
    : "refresh token rejected; force-refreshing";
  return forceRefresh(a, token.calUserId, false, `${why} (${status})`);
}

/** Best effort: without the mark, the next attempt presents the token once more and is rejected again (a call, not the grant). */
async function markRejected(a: Attempt): Promise<void> {
  const { ctx, token } = a;
  try {
    await ctx.store.markRefreshTokenRejected({ userUlid: token.userUlid, expectedVersion: token.version });
  } catch (err) {
    ctx.log.warn({ userUlid: token.userUlid, err }, "could not mark the rejected refresh token; the next attempt presents it again");
  }
}

/** Managed recovery: a new pair for the user by Cal.com user id, under the attempt's (extended) lease. */
async function forceRefresh(a: Attempt, calUserId: number, probe: boolean, why: string): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  ctx.log.warn({ userUlid: token.userUlid, rotationUncertain: token.rotationUncertain }, why);
  const forced = await ctx.calcom.forceRefreshManaged(calUserId);
  await afterCall(a, forced, probe);
  // The old refresh token is dead either way now: a failed force-refresh leaves the rotation uncertain
  // and the token marked rejected, so the retry force-refreshes again instead of presenting it.
  return settle({ ...a, token: { ...token, rotationUncertain: true, refreshTokenRejected: true } }, forced, "FORCE_REFRESHED");
}

/** The grant is dead: RECONNECT_REQUIRED (compare-and-swap on the version read), audit row, alert. */
export async function settleReconnect(a: Attempt, why: string): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  let marked: boolean;
  try {
    marked = await ctx.store.markReconnectRequired({
      userUlid: token.userUlid,
      expectedVersion: token.version,
      owner: a.lease.token,
      code: ERROR_CODES.reconnectRequired,
      now: ctx.clock(),
    });
  } catch (err) {
    await releaseLease(ctx, token.userUlid, a.lease.token);
    return failed(token, failureFromError(err, "storeUnavailable"));
  }
  // The row moved on meanwhile (the user reconnected): their new pair stands; no alert, no audit.
  if (!marked) return settledByOther(ctx, token.userUlid);
  pairChanged(ctx, token.userUlid);
  ctx.log.warn({ userUlid: token.userUlid, kind: token.kind }, `user must reconnect Cal.com: ${why}`);
  const code = ERROR_CODES.reconnectRequired;
  await audit(ctx, { userUlid: token.userUlid, trigger: a.req.trigger, outcome: "RECONNECT_REQUIRED", errorCode: code }, a.started);
  await alert(ctx, "reconnect_required", (s) =>
    s.reconnectRequired({ userUlid: token.userUlid, kind: token.kind, code, now: ctx.clock() }),
  );
  return reconnectRequired({ ...token, status: "RECONNECT_REQUIRED" });
}

export interface TransientFailure {
  failure: Failure;
  /** Cal.com may have rotated: the next rejection is probably our own lost rotation. */
  mayHaveRotated: boolean;
  /** From a 429: when Cal.com's window resets. */
  retryAfterMs?: number;
  /** What Cal.com answered (status, error code). */
  calcom: CalcomAnswer;
}

/** A failure worth retrying: damped failure bookkeeping, the next retry time, audit row and alert. */
export async function settleTransient(a: Attempt, t: TransientFailure): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  const now = ctx.clock();
  const code = t.failure.code;
  // The failure count moves once per window, so the delay also grows with the streak's age: a long
  // outage is retried less and less often. The refresh job retries at this time (jobs/refresh-token.ts).
  const streakMs = token.firstFailureAt ? now.getTime() - token.firstFailureAt.getTime() : 0;
  const delay = Math.max(t.retryAfterMs ?? 0, backoffDelayMs(token.failureCount, ctx.rand), Math.min(streakMs, 5 * 60_000));
  const retryAt = new Date(now.getTime() + delay);
  let recorded: boolean;
  let written = false;
  try {
    recorded = await ctx.store.recordFailure({
      userUlid: token.userUlid,
      expectedVersion: token.version,
      owner: a.lease.token,
      code,
      rotationUncertain: t.mayHaveRotated || token.rotationUncertain,
      refreshTokenRejected: token.refreshTokenRejected,
      nextRefreshAt: retryAt,
      failureWindowMs: ctx.policy.failureWindowMs,
      now,
    });
    written = recorded;
  } catch (err) {
    recorded = true; // unknown: report the failure as ours rather than hide it
    await releaseLease(ctx, token.userUlid, a.lease.token);
    ctx.log.warn({ userUlid: token.userUlid, err }, "failure bookkeeping not written");
  }
  if (!recorded) {
    // The row moved on during the call (a reconnect, a held pair written): that pair stands, and a
    // failure of the old one is nobody's concern. Our lease may still be on the row.
    await releaseLease(ctx, token.userUlid, a.lease.token);
    return settledByOther(ctx, token.userUlid);
  }
  ctx.log.warn(
    { userUlid: token.userUlid, code, calcom: t.calcom, mayHaveRotated: t.mayHaveRotated, retryInMs: delay },
    "refresh failed; will retry",
  );
  await audit(ctx, { userUlid: token.userUlid, trigger: a.req.trigger, outcome: "FAILED_TRANSIENT", errorCode: code }, a.started);
  await alert(ctx, "refresh_failing", (s) =>
    s.refreshFailing({
      userUlid: token.userUlid,
      kind: token.kind,
      code,
      accessTokenExpiresAt: token.accessTokenExpiresAt,
      firstFailureAt: token.firstFailureAt ?? now,
      now,
    }),
  );
  return failedAfterCall(token, t.failure, {
    calcom: t.calcom,
    ...(written ? { retryAt } : {}),
    ...(t.retryAfterMs !== undefined ? { retryAfterMs: t.retryAfterMs } : {}),
  });
}
