/**
 * The on-demand operations behind the public module (`[CAL_TOKEN_UTIL]`). Everything concrete is
 * injected; src/ondemand/client.ts wires it. Bad input and expected failures come back as
 * `TokenRefreshResult` values with stable codes; only programmer errors throw.
 */
import { classifyAccessTokenRejection } from "../core/api-response.js";
import { AppError, ERROR_CODES } from "../core/errors.js";
import { computeNextRefreshAt, decideOnDemand, isStillValid } from "../core/policy.js";
import type { TokenRecord, TokenStore } from "../core/ports.js";
import type { Clock, Rand, RefreshTrigger } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import { componentLogger, type Logger } from "../log/logger.js";
import type { Refresher } from "../refresh/refresher.js";
import type { RefreshOutcome } from "../refresh/types.js";
import { parseSaveInput } from "./save-input.js";
import type { CalTokenInfo, CalTokenStatusReport, SaveCalTokensInput, TokenRefreshResult } from "./types.js";

export interface OnDemandDeps {
  store: TokenStore;
  refresher: Refresher;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  bufferMs: number;
  leadMs: number;
  jitterMs: number;
  /** Called after every successful save (the worker issue schedules the next refresh here). */
  afterSave?: (userUlid: string, nextRefreshAt: Date) => Promise<void>;
}

export interface HandleApiResponseOptions {
  /** The access token the failed request used; if omitted, the last one this client handed out for the user. */
  accessToken?: string;
}

export interface OnDemandService {
  ensureValidCalToken(userUlid: string, forceRefresh?: boolean): Promise<TokenRefreshResult>;
  handleCalApiResponse(
    response: Response,
    retryFn: (accessToken: string) => Promise<Response>,
    userUlid: string,
    options?: HandleApiResponseOptions,
  ): Promise<Response>;
  saveCalTokens(input: SaveCalTokensInput): Promise<void>;
  getCalTokenStatus(userUlid: string): Promise<CalTokenStatusReport | null>;
}

/** Remembers the last access token handed out per user, so a 498 can be matched to it (bounded). */
const LAST_ISSUED_MAX = 10_000;

export function createOnDemandService(deps: OnDemandDeps): OnDemandService {
  const log = componentLogger(deps.logger, "onDemand");
  const lastIssued = new Map<string, string>();

  function remember(userUlid: string, accessToken: string): void {
    lastIssued.delete(userUlid);
    lastIssued.set(userUlid, accessToken);
    if (lastIssued.size > LAST_ISSUED_MAX) lastIssued.delete(lastIssued.keys().next().value as string);
  }

  function success(token: Pick<TokenRecord, "userUlid" | "accessToken" | "accessTokenExpiresAt" | "refreshTokenExpiresAt" | "status">, refreshed: boolean): TokenRefreshResult {
    remember(token.userUlid, token.accessToken);
    return { success: true, refreshed, tokenInfo: toInfo(token) };
  }

  /** Maps a refresher outcome to the public result; a still-valid token survives a failed refresh (invariant 4). */
  function fromOutcome(outcome: RefreshOutcome): TokenRefreshResult {
    if (outcome.ok) return success(outcome.token, outcome.how === "refreshed" || outcome.how === "force_refreshed");
    const { token, error } = outcome;
    if (token && token.status === "ACTIVE" && error.retryable && isStillValid(token.accessTokenExpiresAt, deps.clock())) {
      return { ...success(token, false), error };
    }
    return { success: false, refreshed: false, error };
  }

  async function refreshVia(userUlid: string, trigger: RefreshTrigger, extra: { force?: boolean; staleAccessToken?: string; observedVersion?: number }) {
    return fromOutcome(await deps.refresher.refresh({ userUlid, trigger, ...extra }));
  }

  async function ensureValidCalToken(userUlid: string, forceRefresh = false): Promise<TokenRefreshResult> {
    if (!isUlid(userUlid)) return invalidUlid();
    const ulid = normalizeUlid(userUlid);
    let token: TokenRecord | null;
    try {
      token = await deps.store.get(ulid);
    } catch (err) {
      return storageUnavailable(ulid, err);
    }
    if (!token) return notFound();
    const now = deps.clock();
    const decision = decideOnDemand(token, now, deps.bufferMs, forceRefresh);
    // Recent use puts the user ahead when the refresh budget is short (invariant 8). Best effort, not awaited.
    deps.store.touchLastUsed(ulid, now).catch((err: unknown) => log.debug({ userUlid: ulid, err }, "last-used not recorded"));
    if (decision.reason === "reconnect_required") {
      return { success: false, refreshed: false, error: { code: ERROR_CODES.reconnectRequired, message: "the user must reconnect their Cal.com account", retryable: false } };
    }
    if (!decision.should) return success(token, false);
    log.info({ userUlid: ulid, reason: decision.reason }, "refreshing on demand");
    return refreshVia(ulid, "on_demand", { force: forceRefresh, observedVersion: token.version });
  }

  async function handleCalApiResponse(
    response: Response,
    retryFn: (accessToken: string) => Promise<Response>,
    userUlid: string,
    options: HandleApiResponseOptions = {},
  ): Promise<Response> {
    if (response.status !== 498 && response.status !== 401) return response;
    const body = response.status === 401 ? await response.clone().text().catch(() => "") : "";
    const rejection = classifyAccessTokenRejection(response.status, body);
    if (rejection === null) return response;
    if (!isUlid(userUlid)) return response;
    const ulid = normalizeUlid(userUlid);
    const stale = options.accessToken ?? lastIssued.get(ulid);
    log.info({ userUlid: ulid, status: response.status, rejection, staleKnown: stale !== undefined }, "Cal.com rejected the access token; refreshing once");
    // Unknown stale token: force, but single flight still collapses concurrent 498s into one refresh.
    const result = await refreshVia(ulid, "api_expired", stale === undefined ? { force: true } : { force: true, staleAccessToken: stale });
    if (!result.success || !result.tokenInfo) {
      log.warn({ userUlid: ulid, code: result.error?.code }, "no fresh token after a rejected call; returning the original response");
      return response;
    }
    // Exactly one replay; whatever it returns (even another 498) goes back to the caller.
    return retryFn(result.tokenInfo.accessToken);
  }

  async function saveCalTokens(input: SaveCalTokensInput): Promise<void> {
    const parsed = parseSaveInput(input);
    const now = deps.clock();
    const nextRefreshAt = computeNextRefreshAt(parsed.pair.accessTokenExpiresAt, now, deps.leadMs, deps.jitterMs, deps.rand);
    await deps.store.save({ ...parsed, nextRefreshAt, now });
    remember(parsed.userUlid, parsed.pair.accessToken);
    log.info({ userUlid: parsed.userUlid, kind: parsed.kind, nextRefreshAt }, "tokens saved");
    await deps.afterSave?.(parsed.userUlid, nextRefreshAt);
  }

  async function getCalTokenStatus(userUlid: string): Promise<CalTokenStatusReport | null> {
    if (!isUlid(userUlid)) throw new AppError(ERROR_CODES.invalidUserUlid, "userUlid must be a 26-character ULID");
    const meta = await deps.store.getMeta(normalizeUlid(userUlid));
    if (!meta) return null;
    const now = deps.clock();
    return {
      userUlid: meta.userUlid,
      kind: meta.kind,
      status: meta.status,
      calUserId: meta.calUserId,
      accessTokenExpiresAt: meta.accessTokenExpiresAt,
      refreshTokenExpiresAt: meta.refreshTokenExpiresAt,
      nextRefreshAt: meta.nextRefreshAt,
      lastRefreshedAt: meta.lastRefreshedAt,
      lastUsedAt: meta.lastUsedAt,
      failureCount: meta.failureCount,
      lastFailureAt: meta.lastFailureAt,
      lastFailureCode: meta.lastFailureCode,
      rotationUncertain: meta.rotationUncertain,
      refreshInProgress: meta.leaseUntil !== null && meta.leaseUntil.getTime() > now.getTime(),
      version: meta.version,
    };
  }

  function storageUnavailable(ulid: string, err: unknown): TokenRefreshResult {
    if (err instanceof AppError && err.code === ERROR_CODES.decryptFailed) {
      log.error({ userUlid: ulid, err }, "stored tokens could not be decrypted");
      return { success: false, refreshed: false, error: { code: err.code, message: "stored tokens could not be decrypted (wrong key or corrupt row)", retryable: false } };
    }
    // A pair rotated while the database was down is still usable from memory.
    const held = deps.refresher.heldPair(ulid);
    if (held && isStillValid(held.accessTokenExpiresAt, deps.clock())) {
      return success({ userUlid: ulid, ...held, status: "ACTIVE" }, false);
    }
    log.warn({ userUlid: ulid, err }, "token storage unavailable");
    return { success: false, refreshed: false, error: { code: ERROR_CODES.storeUnavailable, message: "token storage is unavailable", retryable: true } };
  }

  return { ensureValidCalToken, handleCalApiResponse, saveCalTokens, getCalTokenStatus };
}

function toInfo(t: Pick<TokenRecord, "userUlid" | "accessToken" | "accessTokenExpiresAt" | "refreshTokenExpiresAt" | "status">): CalTokenInfo {
  return {
    userUlid: t.userUlid,
    accessToken: t.accessToken,
    accessTokenExpiresAt: t.accessTokenExpiresAt,
    refreshTokenExpiresAt: t.refreshTokenExpiresAt,
    status: t.status,
  };
}

function invalidUlid(): TokenRefreshResult {
  return { success: false, refreshed: false, error: { code: ERROR_CODES.invalidUserUlid, message: "userUlid must be a 26-character ULID", retryable: false } };
}

function notFound(): TokenRefreshResult {
  return { success: false, refreshed: false, error: { code: ERROR_CODES.notFound, message: "no Cal.com tokens stored for this user", retryable: false } };
}
