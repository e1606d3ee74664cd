/**
 * `ensureValidCalToken` (the request path: one primary-key read and a decrypt while the token is
 * fresh, an inline single-flight refresh inside the on-demand buffer) and `handleCalApiResponse`
 * (after Cal.com rejected the token: at most one refresh and one replay).
 */
import { classifyAccessTokenRejection } from "../core/api-response.js";
import { decideOnDemand } from "../core/policy.js";
import type { TokenRecord, TokenStore } from "../core/ports.js";
import type { Clock, RefreshTrigger } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { Logger } from "../log/logger.js";
import type { Refresher } from "../refresh/refresher.js";
import type { RefreshRequest } from "../refresh/types.js";
import { failedWith, resultFromOutcome, resultFromStoreError, tokenResult } from "./results.js";
import type { TokenRefreshResult } from "./types.js";
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
}

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
  let token: TokenRecord | null;
  try {
    token = await deps.store.get(ulid);
  } catch (err) {
    return deps.memory.handOut(resultFromStoreError(deps, ulid, err));
  }
  if (!token) return failedWith("notFound");
  const now = deps.clock();
  const decision = decideOnDemand(token, now, deps.bufferMs, forceRefresh);
  touch(deps, ulid, now);
  if (decision.reason === "reconnect_required") return failedWith("reconnectRequired");
  if (!decision.should) return deps.memory.handOut(tokenResult(token, false));
  deps.log.info({ userUlid: ulid, reason: decision.reason }, "refreshing on demand");
  return refreshVia(deps, ulid, "on_demand", { force: forceRefresh, observedVersion: token.version, knownToken: token });
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
  const stale = options.accessToken ?? deps.memory.lastIssued(ulid);
  deps.log.info(
    { userUlid: ulid, status: response.status, rejection, staleKnown: stale !== undefined },
    "Cal.com rejected the access token; refreshing once",
  );
  // Unknown stale token: force, but single flight still collapses concurrent 498s into one refresh.
  const result = await refreshVia(
    deps,
    ulid,
    "api_expired",
    stale === undefined ? { force: true } : { force: true, staleAccessToken: stale },
  );
  if (!result.success || !result.tokenInfo) {
    deps.log.warn({ userUlid: ulid, code: result.error?.code }, "no fresh token after a rejected call; returning the original response");
    return response;
  }
  // Exactly one replay; whatever it returns (even another 498) goes back to the caller.
  return retryFn(result.tokenInfo.accessToken);
}

async function refreshVia(
  deps: EnsureTokenDeps,
  userUlid: string,
  trigger: RefreshTrigger,
  extra: Omit<RefreshRequest, "userUlid" | "trigger">,
): Promise<TokenRefreshResult> {
  const outcome = await deps.refresher.refresh({ userUlid, trigger, ...extra });
  return deps.memory.handOut(resultFromOutcome(outcome, deps.clock()));
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
