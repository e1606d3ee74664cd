/**
 * The on-demand operations behind the public module (`[CAL_TOKEN_UTIL]`), composed from one file per
 * operation. Everything concrete is injected; src/wiring/cal-token-client.ts wires it. Bad input and
 * expected failures come back as `TokenRefreshResult` values with stable codes from the failure
 * catalogue (src/core/failures.ts); only programmer errors throw.
 */
import type { GrantPolicy } from "../core/grant-policy.js";
import type { AlertSink, CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { CalTokenKind, Clock, Rand } from "../core/types.js";
import { componentLogger, type Logger } from "../log/logger.js";
import type { RefreshProducer } from "../queue/producer.js";
import type { Refresher } from "../refresh/refresher.js";
import { createEnsureToken, type EnsureToken } from "./ensure-token.js";
import { createQueuedRefresh, type RequestRefreshOptions } from "./queued-refresh.js";
import { type CompleteCalConnectionInput, createCompleteConnection } from "./connect.js";
import { createSavePair, createSaveTokens, type SaveOptions } from "./save-tokens.js";
import { createTokenStatus } from "./token-status.js";
import type { CalTokenStatusReport, SaveCalTokensInput, TokenRefreshResult } from "./types.js";
import { createUserMemory } from "./user-memory.js";
import type { TokenCache } from "./token-cache.js";

export type { HandleApiResponseOptions } from "./ensure-token.js";
export type { RequestRefreshOptions } from "./queued-refresh.js";
export type { SaveOptions } from "./save-tokens.js";
export type { CompleteCalConnectionInput } from "./connect.js";

export interface OnDemandDeps {
  store: TokenStore;
  refresher: Refresher;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  bufferMs: number;
  /** The longest a request path waits for a refresh (ON_DEMAND_WAIT_MS). */
  waitMs: number;
  /** The in-process access-token cache and whether fleet invalidations are being heard (token-cache.ts). */
  cache?: { tokens: TokenCache; live: () => boolean };
  /** The refresh policy (src/core/grant-policy.ts): plans a saved user's next refresh. */
  policy: GrantPolicy;
  /** Called after every successful save: schedules the user's next background refresh at `priority`. */
  afterSave?: (userUlid: string, nextRefreshAt: Date, priority: number) => Promise<void>;
  /** A save after a failure streak or a reconnect clears the user's alert (token.recovered). */
  alerts?: AlertSink;
  /** The refresh queue; without it requestCalTokenRefresh answers queue.unavailable. */
  producer?: RefreshProducer;
  /** Kinds whose Cal.com client is not configured: saveCalTokens refuses them (docs/oauth2.md#configuration). */
  unconfiguredKinds?: readonly CalTokenKind[];
  /** The code exchange of completeCalConnection; without it (no OAuth 2.0 app) it answers config.client_not_configured. */
  connect?: { calcom: Pick<CalcomTokenApi, "exchangeAuthorizationCode">; app: { publicClient: boolean } | null };
}

export interface OnDemandService extends EnsureToken {
  saveCalTokens(input: SaveCalTokensInput, opts?: SaveOptions): Promise<void>;
  getCalTokenStatus(userUlid: string): Promise<CalTokenStatusReport | null>;
  requestCalTokenRefresh(userUlid: string, opts?: RequestRefreshOptions): Promise<TokenRefreshResult>;
  /** The OAuth 2.0 callback: exchanges the code, stores and schedules the pair, returns the status (connect.ts). */
  completeCalConnection(input: CompleteCalConnectionInput): Promise<CalTokenStatusReport>;
}

export function createOnDemandService(deps: OnDemandDeps): OnDemandService {
  const log = componentLogger(deps.logger, "onDemand");
  // One memory per service: the token a save stores is the one a later 498 replay assumes.
  const memory = createUserMemory();
  const { store, refresher, clock } = deps;
  const { ensureValidCalToken, handleCalApiResponse } = createEnsureToken({
    store,
    refresher,
    memory,
    log,
    clock,
    bufferMs: deps.bufferMs,
    waitMs: deps.waitMs,
    ...(deps.cache ? { cache: deps.cache } : {}),
  });
  const saveDeps = {
    store,
    memory,
    log,
    clock,
    rand: deps.rand,
    policy: deps.policy,
    ...(deps.afterSave ? { afterSave: deps.afterSave } : {}),
    ...(deps.alerts ? { alerts: deps.alerts } : {}),
    ...(deps.unconfiguredKinds ? { unconfiguredKinds: deps.unconfiguredKinds } : {}),
  };
  const saveCalTokens = createSaveTokens(saveDeps);
  const completeCalConnection = createCompleteConnection({
    calcom: deps.connect?.calcom ?? noExchange,
    app: deps.connect?.app ?? null,
    savePair: createSavePair(saveDeps),
    log,
    clock,
  });
  const requestCalTokenRefresh = createQueuedRefresh({
    store,
    refresher,
    memory,
    log,
    clock,
    ...(deps.producer ? { producer: deps.producer } : {}),
  });
  const getCalTokenStatus = createTokenStatus({ store, clock });
  return { ensureValidCalToken, handleCalApiResponse, saveCalTokens, getCalTokenStatus, requestCalTokenRefresh, completeCalConnection };
}

/** Never called: without an OAuth 2.0 app the connect helper refuses before any exchange. */
const noExchange: Pick<CalcomTokenApi, "exchangeAuthorizationCode"> = {
  exchangeAuthorizationCode: () => Promise.reject(new Error("no OAuth 2.0 app is configured")),
};
