/**
 * Pure refresh policy: when to refresh, when to schedule the next refresh, how long to back off.
 * Time and randomness are parameters; nothing here reads a clock.
 */
import type { CalTokenStatus, Rand } from "./types.js";

export type RefreshReason = "fresh" | "expiring" | "expired" | "forced" | "reconnect_required";

export interface RefreshDecision {
  should: boolean;
  reason: RefreshReason;
}

/** Should a request path refresh before using the stored access token? */
export function decideOnDemand(
  token: { accessTokenExpiresAt: Date; status: CalTokenStatus },
  now: Date,
  bufferMs: number,
  force: boolean,
): RefreshDecision {
  if (token.status === "RECONNECT_REQUIRED") return { should: false, reason: "reconnect_required" };
  if (force) return { should: true, reason: "forced" };
  const left = token.accessTokenExpiresAt.getTime() - now.getTime();
  if (left <= 0) return { should: true, reason: "expired" };
  if (left <= bufferMs) return { should: true, reason: "expiring" };
  return { should: false, reason: "fresh" };
}

/**
 * When the background worker should refresh next: `expiresAt − lead − random(0, jitter)`, spread so
 * that a cohort saved together does not refresh together. For short-lived tokens (tests, demos) the
 * offset is capped at 30–50 % of the remaining life, so a 60 s token is not "due" the moment it is
 * stored. Never earlier than `now`.
 */
export function computeNextRefreshAt(accessTokenExpiresAt: Date, now: Date, leadMs: number, jitterMs: number, rand: Rand): Date {
  const remaining = accessTokenExpiresAt.getTime() - now.getTime();
  if (remaining <= 0) return new Date(now.getTime());
  const r = rand();
  const offset = Math.min(leadMs + r * jitterMs, remaining * (0.3 + 0.2 * r));
  return new Date(Math.max(now.getTime(), accessTokenExpiresAt.getTime() - offset));
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5_000, maxMs: 5 * 60_000 };

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread but still grow. */
export function backoffDelayMs(attempt: number, rand: Rand, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exp = Math.min(policy.baseMs * 2 ** Math.max(0, attempt), policy.maxMs);
  return Math.round(exp * (0.5 + 0.5 * rand()));
}

/** Is the access token still usable for `marginMs`? A failed refresh must not break a request path while it is. */
export function isStillValid(accessTokenExpiresAt: Date, now: Date, marginMs = 5_000): boolean {
  return accessTokenExpiresAt.getTime() - now.getTime() > marginMs;
}
