/**
 * `ensureValidCalToken` (the request path: one primary-key read and a decrypt while the token is
 * fresh, an inline single-flight refresh inside the on-demand buffer) and `handleCalApiResponse`
 * (after Cal.com rejected the token: at most one refresh and one replay).
 *
 * Request paths are bounded: a still-valid token is returned at once when someone else holds the
 * refresh lease, and after `waitMs` whatever the refresh is doing; an expired token's caller waits at
 * most `waitMs`, then gets a retryable `token.refresh_in_progress` while the refresh goes on.
 */
import { classifyAccessTokenRejection } from "../core/api-response.js";
import { failure } from "../core/failures.js";
import { decideOnDemand, isStillValid } from "../core/policy.js";
import type { TokenRecord, TokenStore } from "../core/ports.js";
import { TimeoutError, withTimeout } from "../core/timeout.js";
import type { Clock, RefreshTrigger } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { Logger } from "../log/logger.js";
import type { Refresher } from "../refresh/refresher.js";
import type { RefreshRequest } from "../refresh/types.js";
import { failedResult, failedWith, resultFromOutcome, resultFromStoreError, tokenResult } from "./results.js";
import type { TokenRefreshResult } from "./types.js";
import type { TokenCache } from "./token-cache.js";
import type { UserMemory } from "./user-memory.js";

export interface HandleApiResponseOptions {
  /** The access token the failed request used; if omitted, the last one this client handed out for the user. */
  accessToken?: string;
}

export interface EnsureTokenDeps {
  store: TokenStore;
  refresher: Refresher;
  memory: UserMemory;
  /** The `onDemand` component logger. */
  log: Logger;
  clock: Clock;
  /** Refresh inline when the access token expires within this window. */
  bufferMs: number;
  /** The longest a request path waits for a refresh (ON_DEMAND_WAIT_MS). */
  waitMs: number;
  /** The hot path from memory (token-cache.ts); `live()` false = invalidations may be missed: bypass it. */
  cache?: { tokens: TokenCache; live: () => boolean };
}

/** When a refresh outlived the wait, come back after about this long. */
const RETRY_AFTER_IN_PROGRESS_MS = 1_000;

export interface EnsureToken {
  ensureValidCalToken(userUlid: string, forceRefresh?: boolean): Promise<TokenRefreshResult>;
  handleCalApiResponse(
    response: Response,
    retryFn: (accessToken: string) => Promise<Response>,
    userUlid: string,
    options?: HandleApiResponseOptions,
  ): Promise<Response>;
}

export function createEnsureToken(deps: EnsureTokenDeps): EnsureToken {
  return {
    ensureValidCalToken: (userUlid, forceRefresh = false) => ensureValidCalToken(deps, userUlid, forceRefresh),
    handleCalApiResponse: (response, retryFn, userUlid, options = {}) => handleCalApiResponse(deps, response, retryFn, userUlid, options),
  };
}

async function ensureValidCalToken(deps: EnsureTokenDeps, userUlid: string, forceRefresh: boolean): Promise<TokenRefreshResult> {
  if (!isUlid(userUlid)) return failedWith("invalidUserUlid");
  const ulid = normalizeUlid(userUlid);
  const cached = !forceRefresh && deps.cache?.live() ? deps.cache.tokens.get(ulid, deps.clock()) : undefined;
  if (cached) {
    touch(deps, ulid, deps.clock());
    return deps.memory.handOut(tokenResult(cached, false));
  }
  let token: TokenRecord | null;
  const readAt = deps.clock();
  try {
    token = await deps.store.get(ulid);
  } catch (err) {
    // The database is down: a token this process read earlier and that is still valid keeps working.
    const remembered = deps.cache?.tokens.getForOutage(ulid, deps.clock());
    if (remembered) return deps.memory.handOut(tokenResult(remembered, false));
    return deps.memory.handOut(resultFromStoreError(deps, ulid, err));
  }
  if (!token) return failedWith("notFound");
  const now = deps.clock();
  const decision = decideOnDemand(token, now, deps.bufferMs, forceRefresh);
  touch(deps, ulid, now);
  if (decision.reason === "reconnect_required") return failedWith("reconnectRequired");
  if (!decision.should) {
    if (deps.cache?.live()) deps.cache.tokens.set(token, now, readAt);
    return deps.memory.handOut(tokenResult(token, false));
  }
  const usable = !forceRefresh && isStillValid(token.accessTokenExpiresAt, now);
  // Someone (here or elsewhere) is refreshing and the token still works: use it, never wait behind them.
  if (usable && token.leaseUntil !== null && token.leaseUntil.getTime() > now.getTime()) {
    return deps.memory.handOut(tokenResult(token, false));
  }
  deps.log.info({ userUlid: ulid, reason: decision.reason }, "refreshing on demand");
  const extra = { force: forceRefresh, observedVersion: token.version, knownToken: token };
  return refreshBounded(deps, ulid, "on_demand", extra, usable ? token : null);
}

async function handleCalApiResponse(
  deps: EnsureTokenDeps,
  response: Response,
  retryFn: (accessToken: string) => Promise<Response>,
  userUlid: string,
  options: HandleApiResponseOptions,
): Promise<Response> {
  if (response.status !== 498 && response.status !== 401) return response;
  const body =
    response.status === 401
      ? await response
          .clone()
          .text()
          .catch(() => "")
      : "";
  const rejection = classifyAccessTokenRejection(response.status, body);
  if (rejection === null) return response;
  if (!isUlid(userUlid)) return response;
  const ulid = normalizeUlid(userUlid);
  // Whatever this process remembers for the user is what Cal.com just refused.
  deps.cache?.tokens.delete(ulid, deps.clock());
  const stale = options.accessToken ?? deps.memory.lastIssued(ulid);
  deps.log.info(
    { userUlid: ulid, status: response.status, rejection, staleKnown: stale !== undefined },
    "Cal.com rejected the access token; refreshing once",
  );
  // Unknown stale token: force, but single flight still collapses concurrent 498s into one refresh.
  const extra = stale === undefined ? { force: true } : { force: true, staleAccessToken: stale };
  const result = await refreshBounded(deps, ulid, "api_expired", extra, null);
  // A failed refresh may still hand out the stored token (it looks valid by its expiry): replaying with
  // the very token Cal.com just refused would only fail again.
  if (!result.success || !result.tokenInfo || result.tokenInfo.accessToken === stale) {
    deps.log.warn({ userUlid: ulid, code: result.error?.code }, "no fresh token after a rejected call; returning the original response");
    return response;
  }
  // Exactly one replay; whatever it returns (even another 498) goes back to the caller.
  return retryFn(result.tokenInfo.accessToken);
}

/**
 * Runs a single-flight refresh and waits for it at most `waitMs`. When it takes longer it keeps going
 * (it will persist its pair); the caller gets `usable` (a still-valid token) or a retryable
 * `token.refresh_in_progress`.
 */
async function refreshBounded(
  deps: EnsureTokenDeps,
  userUlid: string,
  trigger: RefreshTrigger,
  extra: Omit<RefreshRequest, "userUlid" | "trigger">,
  usable: TokenRecord | null,
): Promise<TokenRefreshResult> {
  const pending = deps.refresher.refresh({ userUlid, trigger, ...extra });
  try {
    const outcome = await withTimeout(pending, deps.waitMs, "on-demand refresh wait");
    return deps.memory.handOut(resultFromOutcome(outcome, deps.clock()));
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    pending.catch((e: unknown) => deps.log.warn({ userUlid, err: e }, "background refresh failed"));
    deps.log.info({ userUlid, waitedMs: deps.waitMs }, "refresh still running after the request-path wait");
    if (usable) return deps.memory.handOut(tokenResult(usable, false));
    return failedResult({ ...failure("refreshInProgress"), retryAfterMs: RETRY_AFTER_IN_PROGRESS_MS });
  }
}

/**
 * Recent use puts the user ahead when the refresh budget is short (docs/architecture.md#invariant-8-rate-budget).
 * Throttled in memory (src/ondemand/user-memory.ts) so the hot path sends no write on most calls; not
 * awaited, best effort.
 */
function touch(deps: EnsureTokenDeps, userUlid: string, now: Date): void {
  if (!deps.memory.claimTouch(userUlid, now)) return;
  deps.store.touchLastUsed(userUlid, now).catch((err: unknown) => deps.log.debug({ userUlid, err }, "last-used not recorded"));
}
