/**
 * Refresh job priorities (docs/architecture.md#invariant-8-rate-budget): when the refresh budget cannot
 * cover everyone, the users who matter most come first. Pure: time is a parameter.
 */

/** Job priorities: 1 is the highest in BullMQ; unprioritised (0) jobs would jump every level, so never use 0. */
export const PRIORITY = {
  onDemand: 1,
  /**
   * An idle OAuth2 user's one refresh before the refresh token's 30-day expiry (src/core/grant-policy.ts):
   * above the active users, because missing it loses the grant for good while missing a keep-fresh
   * refresh costs one request-path wait.
   */
  keepAlive: 3,
  /** Users who used their token recently. */
  active: 5,
  background: 10,
  /** Users idle for a long time: refreshed when the budget allows. */
  idle: 20,
} as const;

const DAY_MS = 24 * 3600_000;

/**
 * The priority of a keep-fresh refresh by the user's last use: recently active users first. Idle users
 * still get refreshed after everyone else; if their token lapses meanwhile, the on-demand path
 * refreshes it inline when they come back.
 */
export function priorityFor(lastUsedAt: Date | null, now: Date): number {
  if (lastUsedAt && now.getTime() - lastUsedAt.getTime() < DAY_MS) return PRIORITY.active;
  if (lastUsedAt && now.getTime() - lastUsedAt.getTime() < 30 * DAY_MS) return PRIORITY.background;
  return PRIORITY.idle;
}
