/**
 * The refresh policy (docs/architecture.md#scheduling): keep every grant alive at the least cost.
 * Adopted from the capacity simulation's proposal d′ (bench/sim/README.md), which runs these very
 * functions. Pure: time and randomness are parameters.
 *
 * Rules:
 * 1. A user seen by a request path within `keepFreshWindowMs` is kept fresh ahead of expiry
 *    (`computeNextRefreshAt`, priority from `priorityFor`).
 * 2. An idle OAuth2 user is refreshed once, shortly before the refresh token's 30-day expiry:
 *    at `refreshTokenExpiresAt − keepAliveLead − random(0, keepAliveJitter)`, at `PRIORITY.keepAlive`
 *    (above the active users), because missing it loses the grant for good while missing a
 *    keep-fresh refresh costs one request-path wait.
 * 3. An idle managed user is not refreshed at all: the next request refreshes inline (and a lost
 *    managed refresh token is recovered by force-refresh). The row is "parked": its next_refresh_at
 *    moves `parkMs` ahead, and the job that wakes then re-parks without calling Cal.com.
 * 4. A scheduled job decides when it runs, not when it was scheduled: a keep-fresh job that finds the
 *    user no longer active makes no call and re-plans by rule 2 or 3.
 * 5. Alert when an OAuth2 grant's refresh token expires within `refreshTokenAtRiskMs` (the keep-alive
 *    did not get through: budget short, Cal.com failing, the worker down).
 * 6. OAuth2 rows carry their refresh-token expiry. Cal.com does not send it, so it is assumed to be
 *    the time the request that issued the pair was sent + 30 days (`assumedRefreshTokenExpiry`).
 * 7. A row in a failure streak is retried when its job wakes, whatever the user's activity: its
 *    next_refresh_at is then also the cool-down request paths obey, which must never move weeks
 *    ahead (the store's `reschedule` refuses it too).
 */
import { computeNextRefreshAt } from "./policy.js";
import { PRIORITY, priorityFor } from "./priority.js";
import type { CalTokenKind, CalTokenStatus, Rand } from "./types.js";

const DAY_MS = 24 * 3600_000;

/** Cal.com's OAuth2 refresh tokens are JWTs that expire 30 days after they were issued (docs/calcom-api.md). */
export const OAUTH2_REFRESH_TOKEN_TTL_MS = 30 * DAY_MS;

/** Cal.com issues OAuth2 access tokens for 1800 s (`expires_in`), together with the refresh token. */
export const OAUTH2_ACCESS_TOKEN_TTL_MS = 1800_000;

export interface GrantPolicy {
  /** REFRESH_LEAD_SECONDS, REFRESH_JITTER_SECONDS: keep-fresh refreshes (rule 1). */
  leadMs: number;
  jitterMs: number;
  /** KEEP_FRESH_WINDOW_SECONDS: "active" = a request path used the token within this long. */
  keepFreshWindowMs: number;
  /** KEEP_ALIVE_LEAD_SECONDS, KEEP_ALIVE_JITTER_SECONDS: keep-alive at rtExpiry − lead − random(0, jitter). */
  keepAliveLeadMs: number;
  keepAliveJitterMs: number;
  /** REFRESH_TOKEN_AT_RISK_SECONDS: alert when the refresh token expires within this long. */
  refreshTokenAtRiskMs: number;
  /** PARK_SECONDS: how far ahead an idle managed row is parked. */
  parkMs: number;
}

/** The row fields the policy reads. */
export interface GrantRow {
  kind: CalTokenKind;
  status: CalTokenStatus;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  lastUsedAt: Date | null;
  nextRefreshAt: Date;
  /** Set while the row is in a failure streak (rule 7). */
  lastFailureAt: Date | null;
}

export type RefreshPurpose = "keep_fresh" | "keep_alive" | "parked";

export interface RefreshPlan {
  purpose: RefreshPurpose;
  /** The row's next_refresh_at (never before `now`). */
  at: Date;
  /** BullMQ priority of the job that wakes at `at`. */
  priority: number;
}

/**
 * Rule 6: the refresh-token expiry to store with a pair Cal.com issued: the one Cal.com reported, else
 * for OAuth2 `sentAt` (when the request that issued the pair left) + 30 days, else null.
 */
export function assumedRefreshTokenExpiry(kind: CalTokenKind, sentAt: Date, reported: Date | null): Date | null {
  if (reported) return reported;
  return kind === "oauth2" ? new Date(sentAt.getTime() + OAUTH2_REFRESH_TOKEN_TTL_MS) : null;
}

/**
 * When a pair handed to us from outside (saveCalTokens, an import) was issued, at the latest: an
 * OAuth2 access token is issued for 1800 s together with its refresh token, so a pair whose access
 * token expires at E was issued no later than E − 1800 s; never later than `now`. An old pair saved
 * today must not be taken for a new one: its refresh token expires 30 days after it was issued.
 */
export function latestIssuedAt(accessTokenExpiresAt: Date, now: Date): Date {
  return new Date(Math.min(now.getTime(), accessTokenExpiresAt.getTime() - OAUTH2_ACCESS_TOKEN_TTL_MS));
}

export function isRecentlyActive(lastUsedAt: Date | null, now: Date, p: Pick<GrantPolicy, "keepFreshWindowMs">): boolean {
  return lastUsedAt !== null && now.getTime() - lastUsedAt.getTime() < p.keepFreshWindowMs;
}

/** Start of the keep-alive window: from then on a due OAuth2 job refreshes even for an idle user. */
function keepAliveWindowStart(rtExpiresAt: Date, p: GrantPolicy): number {
  return rtExpiresAt.getTime() - p.keepAliveLeadMs - p.keepAliveJitterMs;
}

/**
 * Rules 1–3: when the worker should next look at this user, and at which priority. Called after every
 * write of a new pair (persist applies MIN_REFRESH_INTERVAL on top), by saveCalTokens, and by a job
 * that found its user idle.
 */
export function planNextRefresh(
  row: Omit<GrantRow, "nextRefreshAt" | "status" | "lastFailureAt">,
  now: Date,
  p: GrantPolicy,
  rand: Rand,
): RefreshPlan {
  if (isRecentlyActive(row.lastUsedAt, now, p)) {
    return {
      purpose: "keep_fresh",
      at: computeNextRefreshAt(row.accessTokenExpiresAt, now, p.leadMs, p.jitterMs, rand),
      priority: priorityFor(row.lastUsedAt, now),
    };
  }
  return planWhenIdle(row, now, p, rand);
}

/** Rules 2–3 whatever the activity: the keep-alive (OAuth2) or the parking (managed). */
export function planWhenIdle(row: Pick<GrantRow, "kind" | "refreshTokenExpiresAt">, now: Date, p: GrantPolicy, rand: Rand): RefreshPlan {
  if (row.kind === "oauth2") {
    // An OAuth2 row without a stored expiry (written by older code): its age is unknown, so refresh it soon.
    const rt = row.refreshTokenExpiresAt;
    const at = rt === null ? now.getTime() : rt.getTime() - p.keepAliveLeadMs - rand() * p.keepAliveJitterMs;
    return { purpose: "keep_alive", at: new Date(Math.max(now.getTime(), at)), priority: PRIORITY.keepAlive };
  }
  return { purpose: "parked", at: new Date(now.getTime() + p.parkMs), priority: PRIORITY.idle };
}

/** The priority a (re)scheduled job gets for a row whose next_refresh_at is already planned. */
export function priorityForRow(row: Pick<GrantRow, "kind" | "lastUsedAt">, now: Date, p: Pick<GrantPolicy, "keepFreshWindowMs">): number {
  if (isRecentlyActive(row.lastUsedAt, now, p)) return priorityFor(row.lastUsedAt, now);
  return row.kind === "oauth2" ? PRIORITY.keepAlive : PRIORITY.idle;
}

export type ScheduledDecision =
  | { refresh: true; purpose: "keep_fresh" | "keep_alive" }
  /** No call: the row is not due (someone refreshed meanwhile, or a failure set a later retry); reschedule at its next_refresh_at. */
  | { refresh: false; reason: "not_due"; at: Date; priority: number }
  /** No call (rule 4): write `plan.at` as next_refresh_at and reschedule. */
  | { refresh: false; reason: "idle"; plan: RefreshPlan };

/**
 * Rule 4, for a scheduled (not on-demand) job that woke up. On-demand (priority 1) jobs refresh
 * unconditionally. `dueSlackMs`: a job this close to next_refresh_at counts as due (clock skew).
 */
export function decideScheduled(row: GrantRow, now: Date, p: GrantPolicy, rand: Rand, dueSlackMs = 2_000): ScheduledDecision {
  if (row.nextRefreshAt.getTime() > now.getTime() + dueSlackMs) {
    return { refresh: false, reason: "not_due", at: row.nextRefreshAt, priority: priorityForRow(row, now, p) };
  }
  if (isRecentlyActive(row.lastUsedAt, now, p)) return { refresh: true, purpose: "keep_fresh" };
  if (row.kind === "oauth2") {
    const rt = row.refreshTokenExpiresAt;
    if (rt === null || now.getTime() >= keepAliveWindowStart(rt, p)) return { refresh: true, purpose: "keep_alive" };
  }
  if (row.lastFailureAt !== null) return { refresh: true, purpose: row.kind === "oauth2" ? "keep_alive" : "keep_fresh" };
  return { refresh: false, reason: "idle", plan: planNextRefresh(row, now, p, rand) };
}

/** Rule 5: the grant's deadline is at risk (a gauge over rows; alert when above 0). */
export function refreshTokenAtRisk(
  row: Pick<GrantRow, "kind" | "status" | "refreshTokenExpiresAt">,
  now: Date,
  p: Pick<GrantPolicy, "refreshTokenAtRiskMs">,
): boolean {
  if (row.kind !== "oauth2" || row.status !== "ACTIVE" || row.refreshTokenExpiresAt === null) return false;
  return row.refreshTokenExpiresAt.getTime() - now.getTime() <= p.refreshTokenAtRiskMs;
}
