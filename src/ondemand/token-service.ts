/**
 * The on-demand operations behind the public module (`[CAL_TOKEN_UTIL]`). Everything concrete is
 * injected; src/ondemand/client.ts wires it. Bad input and expected failures come back as
 * `TokenRefreshResult` values with stable codes; only programmer errors throw.
 */
import { classifyAccessTokenRejection } from "../core/api-response.js";
import { AppError, ERROR_CODES } from "../core/errors.js";
import { computeNextRefreshAt, decideOnDemand, isStillValid } from "../core/policy.js";
import type { AlertSink, TokenRecord, TokenStore } from "../core/ports.js";
import type { Clock, Rand, RefreshTrigger } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import { componentLogger, type Logger } from "../log/logger.js";
import type { RefreshProducer } from "../queue/producer.js";
import { PRIORITY } from "../queue/names.js";
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
  /** Called after every successful save: schedules the user's next background refresh. */
  afterSave?: (userUlid: string, nextRefreshAt: Date, lastUsedAt: Date | null) => Promise<void>;
  /** A save after a failure streak or a reconnect clears the user's alert (token.recovered). */
  alerts?: AlertSink;
  /** The refresh queue; without it requestCalTokenRefresh answers queue.unavailable. */
  producer?: RefreshProducer;
}

export interface SaveOptions {
  /** Insert only: if the user already has tokens, leave them and throw AppError `token.exists`. */
  ifAbsent?: boolean;
}

export interface RequestRefreshOptions {
  /** Wait for the worker to finish (default false: just queue it). */
  wait?: boolean;
  /** Upper bound on the wait (default 15 s). */
  timeoutMs?: number;
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
  saveCalTokens(input: SaveCalTokensInput, opts?: SaveOptions): Promise<void>;
  getCalTokenStatus(userUlid: string): Promise<CalTokenStatusReport | null>;
  requestCalTokenRefresh(userUlid: string, opts?: RequestRefreshOptions): Promise<TokenRefreshResult>;
}

/** Per-user memory in this process (last token handed out, last touch) is capped at this many users. */
const PER_USER_MEMORY_MAX = 10_000;

/** Map.set that keeps insertion order as recency and drops the oldest entry past the cap. */
function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > PER_USER_MEMORY_MAX) map.delete(map.keys().next().value as string);
}
const TOUCH_EVERY_MS = 60_000;

export function createOnDemandService(deps: OnDemandDeps): OnDemandService {
  const log = componentLogger(deps.logger, "onDemand");
  const lastIssued = new Map<string, string>();

  function remember(userUlid: string, accessToken: string): void {
    setBounded(lastIssued, userUlid, accessToken);
  }

  /**
   * Recent use puts the user ahead when the refresh budget is short (invariant 8). Throttled here in
   * memory (the SQL throttles too, across processes) so the hot path sends no write on most calls;
   * not awaited, best effort.
   */
  const lastTouched = new Map<string, number>();
  function touch(userUlid: string, now: Date): void {
    const last = lastTouched.get(userUlid);
    if (last !== undefined && now.getTime() - last < TOUCH_EVERY_MS) return;
    setBounded(lastTouched, userUlid, now.getTime());
    deps.store.touchLastUsed(userUlid, now).catch((err: unknown) => log.debug({ userUlid, err }, "last-used not recorded"));
  }

  function success(token: Pick<TokenRecord, "userUlid" | "accessToken" | "accessTokenExpiresAt" | "refreshTokenExpiresAt" | "status">, refreshed: boolean): TokenRefreshResult {
    remember(token.userUlid, token.accessToken);
    return { success: true, refreshed, tokenInfo: toInfo(token) };
  }

  /** Maps a refresher outcome to the public result; a still-valid token survives a failed refresh (invariant 4). */
  function fromOutcome(outcome: RefreshOutcome): TokenRefreshResult {
    if (outcome.ok) return success(outcome.token, outcome.how === "refreshed" || outcome.how === "force_refreshed");
    const { token, error } = outcome;
    // Any failure except a dead grant or an unreadable row leaves a still-valid token usable (a wrong
    // client secret after a deploy must not take down request paths while tokens are still good).
    const tokenUsable = error.code !== ERROR_CODES.reconnectRequired && error.code !== ERROR_CODES.decryptFailed;
    if (token && token.status === "ACTIVE" && tokenUsable && isStillValid(token.accessTokenExpiresAt, deps.clock())) {
      return { ...success(token, false), error };
    }
    return { success: false, refreshed: false, error };
  }

  async function refreshVia(
    userUlid: string,
    trigger: RefreshTrigger,
    extra: { force?: boolean; staleAccessToken?: string; observedVersion?: number; knownToken?: TokenRecord },
  ) {
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
    touch(ulid, now);
    if (decision.reason === "reconnect_required") return reconnectRequiredResult();
    if (!decision.should) return success(token, false);
    log.info({ userUlid: ulid, reason: decision.reason }, "refreshing on demand");
    return refreshVia(ulid, "on_demand", { force: forceRefresh, observedVersion: token.version, knownToken: token });
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

  async function saveCalTokens(input: SaveCalTokensInput, opts: SaveOptions = {}): Promise<void> {
    const parsed = parseSaveInput(input);
    const now = deps.clock();
    const nextRefreshAt = computeNextRefreshAt(parsed.pair.accessTokenExpiresAt, now, deps.leadMs, deps.jitterMs, deps.rand);
    const meta = await deps.store.save({ ...parsed, nextRefreshAt, now, ...(opts.ifAbsent ? { ifAbsent: true } : {}) });
    if (!meta) throw new AppError(ERROR_CODES.exists, "tokens already stored for this user (left unchanged)");
    remember(parsed.userUlid, parsed.pair.accessToken);
    log.info({ userUlid: parsed.userUlid, kind: parsed.kind, nextRefreshAt }, "tokens saved");
    // The pair is stored; scheduling and alerts are best effort (the sweep is the safety net).
    try {
      await deps.alerts?.recovered({ userUlid: parsed.userUlid, kind: parsed.kind, now });
      await deps.afterSave?.(parsed.userUlid, nextRefreshAt, meta.lastUsedAt);
    } catch (err) {
      log.warn({ userUlid: parsed.userUlid, err }, "saved, but the next refresh was not scheduled; the sweep will pick it up");
    }
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

  /**
   * Refresh through the worker queue (priority 1; an existing delayed job is promoted, not
   * duplicated). With `wait`, the result is read from the database once the job finished.
   */
  async function requestCalTokenRefresh(userUlid: string, opts: RequestRefreshOptions = {}): Promise<TokenRefreshResult> {
    if (!isUlid(userUlid)) return invalidUlid();
    const ulid = normalizeUlid(userUlid);
    const producer = deps.producer;
    if (!producer) return queueUnavailable();
    let before;
    try {
      before = await deps.store.getMeta(ulid);
    } catch (err) {
      return storageUnavailable(ulid, err);
    }
    if (!before) return notFound();
    if (before.status === "RECONNECT_REQUIRED") return reconnectRequiredResult();
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    try {
      let job = await producer.requestNow(ulid);
      log.info({ userUlid: ulid, jobId: job.id, wait: opts.wait === true }, "refresh requested through the queue");
      if (!opts.wait) return { success: true, refreshed: false };
      let finished = await producer.waitFor(job, Math.max(1, deadline - Date.now()));
      // We joined a scheduled job that was already running: it may have found nothing due. Ask again.
      if (job.priority !== PRIORITY.onDemand && (await deps.store.getMeta(ulid))?.version === before.version) {
        job = await producer.requestNow(ulid);
        finished = await producer.waitFor(job, Math.max(1, deadline - Date.now()));
      }
      const token = await deps.store.get(ulid);
      if (!token) return notFound();
      const refreshed = token.version > before.version;
      if (token.status === "RECONNECT_REQUIRED") return reconnectRequiredResult();
      if (finished === "failed" && !refreshed) {
        return { success: false, refreshed: false, error: { code: ERROR_CODES.refreshFailed, message: `queued refresh failed (${token.lastFailureCode ?? "unknown"})`, retryable: true } };
      }
      return success(token, refreshed);
    } catch (err) {
      if (err instanceof Error && /timed out/i.test(err.message)) {
        return { success: false, refreshed: false, error: { code: ERROR_CODES.waitTimeout, message: "the queued refresh did not finish in time; it is still queued", retryable: true } };
      }
      log.warn({ userUlid: ulid, err }, "refresh queue unavailable");
      return queueUnavailable();
    }
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

  return { ensureValidCalToken, handleCalApiResponse, saveCalTokens, getCalTokenStatus, requestCalTokenRefresh };
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

function reconnectRequiredResult(): TokenRefreshResult {
  return { success: false, refreshed: false, error: { code: ERROR_CODES.reconnectRequired, message: "the user must reconnect their Cal.com account", retryable: false } };
}

function queueUnavailable(): TokenRefreshResult {
  return { success: false, refreshed: false, error: { code: ERROR_CODES.queueUnavailable, message: "the refresh queue is unavailable", retryable: true } };
}
