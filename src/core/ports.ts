/**
 * The adapter interfaces the refresh use case and the on-demand module depend on. Concrete
 * implementations: src/calcom (got), src/store (Prisma). Pure types only.
 */
import type { CalRefreshResult } from "./calcom-result.js";
import type { CalTokenKind, CalTokenStatus, TokenPair } from "./types.js";

export interface CalcomTokenApi {
  /** Managed user: POST /v2/oauth/{clientId}/refresh. Never retried automatically. */
  refreshManaged(refreshToken: string): Promise<CalRefreshResult>;
  /** Managed user: POST /v2/oauth-clients/{clientId}/users/{calUserId}/force-refresh. */
  forceRefreshManaged(calUserId: number): Promise<CalRefreshResult>;
  /** OAuth2 app: POST /v2/auth/oauth2/token with grant_type=refresh_token. */
  refreshOAuth2(refreshToken: string): Promise<CalRefreshResult>;
  /**
   * OAuth2 app: POST /v2/auth/oauth2/token with grant_type=authorization_code (the connect flow,
   * docs/calcom-api.md#oauth2-authorization-code). Classified like a refresh: `refreshed` carries the new
   * grant's first pair, `rejected` means Cal.com refused the code. Never retried automatically.
   */
  exchangeAuthorizationCode(input: AuthorizationCodeExchange): Promise<CalRefreshResult>;
}

/** What the code exchange sends besides the client's credentials. All three are secrets or tied to one. */
export interface AuthorizationCodeExchange {
  code: string;
  /** Exactly the redirect URI the authorization request used. */
  redirectUri: string;
  /** The PKCE verifier (RFC 7636), when the authorization request carried a code challenge. */
  codeVerifier?: string;
}

/** Row metadata: everything except the secrets. Safe to log field by field. */
export interface TokenMeta {
  userUlid: string;
  kind: CalTokenKind;
  calUserId: number | null;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  status: CalTokenStatus;
  version: number;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  rotationUncertain: boolean;
  /** Cal.com rejected the stored refresh token and no new pair was stored since (managed: force-refresh next). */
  refreshTokenRejected: boolean;
  failureCount: number;
  firstFailureAt: Date | null;
  lastFailureAt: Date | null;
  lastFailureCode: string | null;
  lastRefreshedAt: Date | null;
  nextRefreshAt: Date;
  lastUsedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A row with its tokens decrypted. */
export interface TokenRecord extends TokenMeta {
  accessToken: string;
  refreshToken: string;
}

export interface SaveTokensInput {
  userUlid: string;
  kind: CalTokenKind;
  calUserId: number | null;
  pair: TokenPair;
  nextRefreshAt: Date;
  now: Date;
  /** Insert only: leave an existing row alone (re-running an import must not roll tokens back). */
  ifAbsent?: boolean;
}

export type LeaseResult = { kind: "acquired"; token: TokenRecord } | { kind: "held"; meta: TokenMeta } | { kind: "missing" };

export type AuditOutcome = "REFRESHED" | "FORCE_REFRESHED" | "FAILED_TRANSIENT" | "RECONNECT_REQUIRED" | "RECOVERED" | "CONFIG_ERROR";

export interface AuditEntry {
  userUlid: string;
  outcome: AuditOutcome;
  trigger: string;
  errorCode?: string | null;
  version?: number | null;
  durationMs?: number | null;
}

export interface TokenStore {
  /** One primary-key read, tokens decrypted. Throws TokenDecryptError for a bad ciphertext. */
  get(userUlid: string): Promise<TokenRecord | null>;
  /** One primary-key read without decrypting. */
  getMeta(userUlid: string): Promise<TokenMeta | null>;
  /**
   * Upsert after the connect flow: new pair, status ACTIVE, failures and lease cleared, version + 1.
   * With `ifAbsent`, an existing row is left alone and the result is null.
   */
  save(input: SaveTokensInput): Promise<TokenMeta | null>;
  /**
   * Atomically takes the refresh lease for `forMs` if it is free or lapsed (one UPDATE … RETURNING,
   * which also re-reads the row). Lapse and length are judged by the DATABASE's clock, so processes
   * with skewed clocks agree. `owner` is one refresh attempt's lease token: re-entrant (extends) for
   * the same token only, so two attempts can never hold one row, even within one process.
   */
  acquireLease(userUlid: string, owner: string, forMs: number): Promise<LeaseResult>;
  /** Release only if `owner` still holds it. */
  releaseLease(userUlid: string, owner: string): Promise<void>;
  /**
   * Compare-and-swap the rotated pair: WHERE version = expectedVersion. Clears the lease (if ours),
   * failures, rotationUncertain and refreshTokenRejected; status ACTIVE; version + 1. `false` = another writer won.
   */
  saveRotated(input: {
    userUlid: string;
    expectedVersion: number;
    owner: string;
    pair: TokenPair;
    nextRefreshAt: Date;
    now: Date;
    /** Written in the same statement when the swap succeeds (one commit instead of two). */
    /** `errorCode` notes something odd about a success (e.g. an expiry Cal.com did not give). */
    audit?: { outcome: AuditOutcome; trigger: string; durationMs: number; errorCode?: string | null };
  }): Promise<{ ok: true; meta: TokenMeta } | { ok: false }>;
  /**
   * Failure bookkeeping, CAS on version (a stale failure never touches a newer pair). The count goes
   * up at most once per `failureWindowMs`. Releases the lease if ours. Does not bump the version.
   */
  recordFailure(input: {
    userUlid: string;
    expectedVersion: number;
    owner: string;
    code: string;
    rotationUncertain: boolean;
    /** Sets refresh_token_rejected (OR-ed like rotationUncertain); a new pair clears both. */
    refreshTokenRejected?: boolean;
    nextRefreshAt: Date;
    failureWindowMs: number;
    now: Date;
  }): Promise<boolean>;
  /**
   * Moves next_refresh_at without touching the pair: a scheduled job found its user idle and made no
   * call (docs/architecture.md#scheduling). Compare-and-swap on the version, and only while the row is
   * ACTIVE and has no failure streak (its next_refresh_at is then also the cool-down request paths
   * obey, which must never move weeks ahead). Does not bump the version, writes no audit row and leaves
   * updated_at alone: scheduling is coordination, not data. `false` = the row changed meanwhile.
   */
  reschedule(input: {
    userUlid: string;
    expectedVersion: number;
    nextRefreshAt: Date;
    /** Only if no request path used the token since this time (a user who just came back is not parked). */
    idleSince: Date;
  }): Promise<boolean>;
  /**
   * Cal.com rejected the stored refresh token (compare-and-swap on the version): sets
   * refresh_token_rejected so no later attempt presents it again; nothing else changes. The next pair
   * written clears it. `false` = the row moved on.
   */
  markRefreshTokenRejected(input: { userUlid: string; expectedVersion: number }): Promise<boolean>;
  /** status = RECONNECT_REQUIRED, CAS on version; releases the lease if ours. */
  markReconnectRequired(input: { userUlid: string; expectedVersion: number; owner: string; code: string; now: Date }): Promise<boolean>;
  /** Records use by a request path (prioritises busy users). Cheap, best effort. */
  touchLastUsed(userUlid: string, now: Date): Promise<void>;
  insertAudit(entry: AuditEntry): Promise<void>;
}

/**
 * Status flips that become webhook events (docs/architecture.md#invariant-7-every-outcome-is-recorded).
 * Implementations flip a per-user alert state atomically so each event fires once per streak, and
 * flips back on recovery. The refresher calls these best-effort: a failure here is logged, never
 * allowed to cost a user their token.
 */
export interface AlertSink {
  /** A refresh failed transiently; the sink decides whether the user is affected enough to alert. */
  refreshFailing(input: {
    userUlid: string;
    kind: CalTokenKind;
    code: string;
    accessTokenExpiresAt: Date;
    firstFailureAt: Date | null;
    now: Date;
  }): Promise<void>;
  reconnectRequired(input: { userUlid: string; kind: CalTokenKind; code: string; now: Date }): Promise<void>;
  /** Called after a successful refresh or save that followed failures; emits `token.recovered` if an alert was raised. */
  recovered(input: { userUlid: string; kind: CalTokenKind; now: Date }): Promise<void>;
  /** The configuration breaker opened: token calls stopped fleet-wide (one event per opening). */
  callsSuspended?(input: { reason: string; now: Date }): Promise<void>;
  /** A probe succeeded and the breaker closed: token calls resumed. */
  callsResumed?(input: { now: Date }): Promise<void>;
}

/**
 * A held pair: a rotated pair Cal.com issued that the database has not taken yet (it was down). It
 * is the user's only live pair, so it is kept where every process can see it and written later with
 * the usual compare-and-swap (docs/architecture.md#invariant-2-persist-first). `raw` identifies the
 * exact stored record, so a flush deletes only what it wrote.
 */
export interface HeldPair {
  userUlid: string;
  expectedVersion: number;
  pair: TokenPair;
  nextRefreshAt: Date;
  trigger: string;
  heldSince: Date;
  raw?: string;
}

/**
 * Shared storage for held pairs (Redis), so a pair survives the crash of the process that got it.
 * Whatever `get` and `list` return authenticated as a whole record of that user and makes sense; a
 * record that does not is quarantined by the store (kept aside, logged, counted), never returned, and
 * never stops the others. Only the flush's compare-and-swap makes an old authentic record harmless.
 */
export interface HeldPairStore {
  /** Stores (replaces) the user's record; the result's `raw` identifies it. */
  put(held: HeldPair): Promise<HeldPair>;
  get(userUlid: string): Promise<HeldPair | null>;
  /** Up to `limit` records, oldest first, from an index (never a keyspace scan). */
  list(limit: number): Promise<HeldPair[]>;
  /** Deletes the record only if it is still exactly `held` (a newer one stays). */
  remove(held: HeldPair): Promise<void>;
}

/** Which share of the token-call budget a call draws on: request paths come before background work. */
export type CallClass = "request" | "background";

/**
 * The fleet-wide budget for calls to Cal.com's token endpoints (docs/architecture.md#invariant-8-rate-budget), shared by every
 * worker and every request path. `take` counts one call, or refuses with how long until the window has room.
 */
export interface CallBudget {
  take(callClass: CallClass, now: Date): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
}

export type BreakerState = { open: false } | { open: true; reason: string; openedAt: Date; probeAt: Date };

/**
 * The fleet-wide breaker for configuration failures (a refused client secret, an unknown client, a
 * wrong CAL_API_URL): while it is open no process calls Cal.com's token endpoints, except one probe
 * at a time when `probeAt` has passed. Nothing about any user changes while it is open.
 */
export interface ConfigBreaker {
  state(now: Date): Promise<BreakerState>;
  /** Claims the single probe slot if the breaker is open and its probe is due; moves the next probe on. */
  claimProbe(now: Date): Promise<boolean>;
  /** Opens the breaker (`opened`) or, if open already, backs the next probe off (`still_open`). */
  trip(reason: string, now: Date): Promise<"opened" | "still_open">;
  /** Closes it; `true` if it was open. */
  close(now: Date): Promise<boolean>;
}
