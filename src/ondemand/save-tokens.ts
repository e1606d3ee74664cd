/**
 * `saveCalTokens`: stores a pair after the connect flow (the only way secrets come in), then
 * schedules the user's next background refresh and clears an alert, both best effort.
 */
import { AppError } from "../core/errors.js";
import { failure } from "../core/failures.js";
import { assumedRefreshTokenExpiry, type GrantPolicy, latestIssuedAt, planNextRefresh } from "../core/grant-policy.js";
import type { AlertSink, TokenMeta, TokenStore } from "../core/ports.js";
import type { CalTokenKind, Clock, Rand } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import { failureError, storeFailureError } from "./results.js";
import { MISSING_CAL_USER_ID_WARNING, type ParsedSaveInput, parseSaveInput } from "./save-input.js";
import type { SaveCalTokensInput } from "./types.js";
import type { UserMemory } from "./user-memory.js";

export interface SaveOptions {
  /** Insert only: if the user already has tokens, leave them and throw AppError `token.exists`. */
  ifAbsent?: boolean;
}

export interface SaveTokensDeps {
  store: TokenStore;
  memory: UserMemory;
  /** The `onDemand` component logger. */
  log: Logger;
  clock: Clock;
  rand: Rand;
  /** The refresh policy (src/core/grant-policy.ts): plans the saved user's next refresh. */
  policy: GrantPolicy;
  /** Called after every successful save: schedules the user's next background refresh at `priority`. */
  afterSave?: (userUlid: string, nextRefreshAt: Date, priority: number) => Promise<void>;
  /** A save after a failure streak or a reconnect clears the user's alert (token.recovered). */
  alerts?: AlertSink;
  /** Kinds whose Cal.com client is not configured: saveCalTokens refuses them. */
  unconfiguredKinds?: readonly CalTokenKind[];
}

export type SaveCalTokens = (input: SaveCalTokensInput, opts?: SaveOptions) => Promise<void>;

/** Stores an already validated pair, then schedules and clears an alert; the stored row's metadata. */
export type SavePair = (parsed: Omit<ParsedSaveInput, "missingCalUserId">, opts?: SaveOptions) => Promise<TokenMeta>;

export function createSaveTokens(deps: SaveTokensDeps): SaveCalTokens {
  const savePair = createSavePair(deps);
  return async function saveCalTokens(input, opts = {}) {
    const { missingCalUserId, ...parsed } = parseSaveInput(input);
    if (deps.unconfiguredKinds?.includes(parsed.kind)) throw kindWithoutClient(parsed.kind);
    if (missingCalUserId) deps.log.warn({ userUlid: parsed.userUlid }, MISSING_CAL_USER_ID_WARNING);
    await savePair(parsed, opts);
  };
}

/**
 * A pair nothing here could refresh is refused, not stored: in particular a connect flow that forgot
 * `kind: "oauth2"` (the default is "managed") in a deployment with only an OAuth 2.0 app
 * (docs/oauth2.md#configuration).
 */
function kindWithoutClient(kind: CalTokenKind): AppError {
  const f = failure(kind === "managed" ? "platformClientMissing" : "oauth2AppMissing");
  const hint = kind === "managed" ? '; users of an OAuth 2.0 app are saved with kind "oauth2"' : "";
  return new AppError(f.code, `saveCalTokens: ${f.message}${hint}`, { retryable: f.retryable });
}

/**
 * An OAuth2 pair without a refresh-token expiry (Cal.com does not send one) gets the assumed one: 30
 * days from when the pair was issued, at the latest (`latestIssuedAt`: a pair saved long after it was
 * issued, e.g. by an import, keeps its real deadline). The connect helper passes the exact one.
 */
function withRefreshTokenExpiry<T extends Pick<ParsedSaveInput, "kind" | "pair">>(parsed: T, now: Date): T {
  const { pair } = parsed;
  const issuedAt = latestIssuedAt(pair.accessTokenExpiresAt, now);
  return {
    ...parsed,
    pair: { ...pair, refreshTokenExpiresAt: assumedRefreshTokenExpiry(parsed.kind, issuedAt, pair.refreshTokenExpiresAt) },
  };
}

/** The save path shared by `saveCalTokens` and the connect helper (connect.ts). */
export function createSavePair(deps: SaveTokensDeps): SavePair {
  const { log } = deps;
  return async function savePair(input, opts = {}) {
    const now = deps.clock();
    const parsed = withRefreshTokenExpiry(input, now);
    // The user is connecting (or the web app is storing their pair) now: planned as active, so the
    // first refresh is a keep-fresh one; the job that wakes then decides by the user's actual use.
    const plan = planNextRefresh({ ...parsed.pair, kind: parsed.kind, lastUsedAt: now }, now, deps.policy, deps.rand);
    const nextRefreshAt = plan.at;
    let meta: Awaited<ReturnType<TokenStore["save"]>>;
    try {
      meta = await deps.store.save({ ...parsed, nextRefreshAt, now, ...(opts.ifAbsent ? { ifAbsent: true } : {}) });
    } catch (err) {
      log.error({ userUlid: parsed.userUlid, err }, "tokens not saved: token storage failed");
      throw storeFailureError(err);
    }
    if (!meta) throw failureError("exists");
    deps.memory.remember(parsed.userUlid, parsed.pair.accessToken);
    log.info({ userUlid: parsed.userUlid, kind: parsed.kind, nextRefreshAt }, "tokens saved");
    // The pair is stored; scheduling and alerts are best effort (the sweep is the safety net).
    try {
      await deps.alerts?.recovered({ userUlid: parsed.userUlid, kind: parsed.kind, now });
      await deps.afterSave?.(parsed.userUlid, nextRefreshAt, plan.priority);
    } catch (err) {
      log.warn({ userUlid: parsed.userUlid, err }, "saved, but the next refresh was not scheduled; the sweep will pick it up");
    }
    return meta;
  };
}
