/**
 * The refresh policy (src/core/grant-policy.ts, docs/architecture.md#scheduling), table by table, with
 * the production defaults: keep fresh users seen within 5 minutes (lead 600 s + jitter 300 s), keep an
 * idle OAuth2 grant alive 3–5 days before its refresh token's 30-day expiry, park an idle managed user
 * 30 days, alert 24 hours before a refresh token expires. rand() is 0.5 unless a row says otherwise.
 */
import {
  assumedRefreshTokenExpiry,
  decideScheduled,
  type GrantPolicy,
  type GrantRow,
  isRecentlyActive,
  latestIssuedAt,
  OAUTH2_REFRESH_TOKEN_TTL_MS,
  planNextRefresh,
  planWhenIdle,
  priorityForRow,
  refreshTokenAtRisk,
} from "../../src/core/grant-policy.js";
import { PRIORITY, priorityFor } from "../../src/core/priority.js";
import { PRIORITY as QUEUE_PRIORITY } from "../../src/queue/names.js";
import { priorityFor as queuePriorityFor } from "../../src/queue/refresh-queue.js";

const S = 1_000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;
const now = new Date("2026-12-01T12:00:00.000Z");
const at = (ms: number) => new Date(now.getTime() + ms);
const half = () => 0.5;

const P: GrantPolicy = {
  leadMs: 600 * S,
  jitterMs: 300 * S,
  keepFreshWindowMs: 5 * MIN,
  keepAliveLeadMs: 3 * D,
  keepAliveJitterMs: 2 * D,
  refreshTokenAtRiskMs: D,
  parkMs: 30 * D,
};

/** A row of each kind as the worker reads it: access token valid 30 (OAuth2) or 60 (managed) minutes, due now. */
function row(over: Partial<GrantRow> & Pick<GrantRow, "kind">): GrantRow {
  return {
    status: "ACTIVE",
    accessTokenExpiresAt: at(over.kind === "oauth2" ? 30 * MIN : 60 * MIN),
    refreshTokenExpiresAt: over.kind === "oauth2" ? at(30 * D) : null,
    lastUsedAt: null,
    nextRefreshAt: now,
    lastFailureAt: null,
    ...over,
  };
}

describe("priorities", () => {
  it("keep-alive sits between on-demand and the active users; the queue modules re-export the same values", () => {
    expect(PRIORITY).toEqual({ onDemand: 1, keepAlive: 3, active: 5, background: 10, idle: 20 });
    expect(QUEUE_PRIORITY).toBe(PRIORITY);
    expect(queuePriorityFor).toBe(priorityFor);
  });

  it.each([
    ["never used", null, PRIORITY.idle],
    ["used a minute ago", at(-MIN), PRIORITY.active],
    ["used 23 h 59 min ago", at(-D + MIN), PRIORITY.active],
    ["used exactly 24 h ago", at(-D), PRIORITY.background],
    ["used 29 days ago", at(-29 * D), PRIORITY.background],
    ["used 30 days ago", at(-30 * D), PRIORITY.idle],
  ])("priorityFor: %s → %i", (_what, lastUsedAt, expected) => {
    expect(priorityFor(lastUsedAt, now)).toBe(expected);
  });

  it.each([
    ["an active managed user", row({ kind: "managed", lastUsedAt: at(-MIN) }), PRIORITY.active],
    ["an active OAuth2 user", row({ kind: "oauth2", lastUsedAt: at(-4 * MIN) }), PRIORITY.active],
    ["an idle OAuth2 user (seen 6 min ago)", row({ kind: "oauth2", lastUsedAt: at(-6 * MIN) }), PRIORITY.keepAlive],
    ["an OAuth2 user never seen", row({ kind: "oauth2" }), PRIORITY.keepAlive],
    ["an idle managed user (seen an hour ago)", row({ kind: "managed", lastUsedAt: at(-H) }), PRIORITY.idle],
    ["a managed user never seen", row({ kind: "managed" }), PRIORITY.idle],
  ])("priorityForRow: %s → %i", (_what, r, expected) => {
    expect(priorityForRow(r, now, P)).toBe(expected);
  });
});

describe("isRecentlyActive (KEEP_FRESH_WINDOW_SECONDS)", () => {
  it.each([
    [null, false],
    [at(0), true],
    [at(-5 * MIN + 1), true],
    [at(-5 * MIN), false],
    [at(-D), false],
  ])("last used %p → %p", (lastUsedAt, expected) => {
    expect(isRecentlyActive(lastUsedAt, now, P)).toBe(expected);
  });
});

describe("the stored refresh-token expiry", () => {
  it.each([
    ["OAuth2, none reported: 30 days from when the request left", "oauth2", null, at(-2 * S).getTime() + 30 * D],
    ["OAuth2, one reported: kept", "oauth2", at(7 * D), at(7 * D).getTime()],
    ["managed, none reported: none", "managed", null, null],
    ["managed, one reported: kept", "managed", at(365 * D), at(365 * D).getTime()],
  ] as const)("%s", (_what, kind, reported, expected) => {
    expect(assumedRefreshTokenExpiry(kind, at(-2 * S), reported)?.getTime() ?? null).toBe(expected);
    expect(OAUTH2_REFRESH_TOKEN_TTL_MS).toBe(30 * D);
  });

  it.each([
    ["a pair issued just now (access token valid 1800 s)", at(1800 * S), now],
    ["an access token valid longer than Cal.com issues: now", at(2 * H), now],
    ["a pair issued 20 minutes ago", at(10 * MIN), at(-20 * MIN)],
    ["an old pair saved today (access token expired 10 days ago)", at(-10 * D), at(-10 * D - 1800 * S)],
  ])("latestIssuedAt: %s", (_what, accessTokenExpiresAt, expected) => {
    expect(latestIssuedAt(accessTokenExpiresAt, now)).toEqual(expected);
  });
});

describe("planNextRefresh", () => {
  it.each([
    // rule 1: keep fresh, exactly as computeNextRefreshAt: expiry − 600 s − 0.5 · 300 s, capped at
    // 40 % of the remaining life for rand 0.5 (720 s of an 1800 s OAuth2 token)
    [
      "an active managed user: keep fresh",
      row({ kind: "managed", lastUsedAt: at(-MIN) }),
      "keep_fresh",
      60 * MIN - 750 * S,
      PRIORITY.active,
    ],
    ["an active OAuth2 user: keep fresh", row({ kind: "oauth2", lastUsedAt: at(-MIN) }), "keep_fresh", 30 * MIN - 720 * S, PRIORITY.active],
    [
      "an active OAuth2 user near the refresh-token deadline: keep fresh (which renews it)",
      row({ kind: "oauth2", lastUsedAt: at(-MIN), refreshTokenExpiresAt: at(H) }),
      "keep_fresh",
      30 * MIN - 720 * S,
      PRIORITY.active,
    ],
    // rule 3: park
    ["a managed user never seen: parked 30 days", row({ kind: "managed" }), "parked", 30 * D, PRIORITY.idle],
    ["a managed user seen 6 minutes ago: parked", row({ kind: "managed", lastUsedAt: at(-6 * MIN) }), "parked", 30 * D, PRIORITY.idle],
    // rule 2: keep alive at refresh-token expiry − 3 d − 0.5 · 2 d
    ["an idle OAuth2 user just refreshed: kept alive in 26 days", row({ kind: "oauth2" }), "keep_alive", 26 * D, PRIORITY.keepAlive],
    [
      "an idle OAuth2 user whose refresh token expires in 2 days: kept alive now",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(2 * D) }),
      "keep_alive",
      0,
      PRIORITY.keepAlive,
    ],
    [
      "an idle OAuth2 user without a stored expiry (older code): kept alive now",
      row({ kind: "oauth2", refreshTokenExpiresAt: null }),
      "keep_alive",
      0,
      PRIORITY.keepAlive,
    ],
  ] as const)("%s", (_what, r, purpose, inMs, priority) => {
    expect(planNextRefresh(r, now, P, half)).toEqual({ purpose, at: at(inMs), priority });
  });

  it("spreads keep-alives over the jitter, never after refresh-token expiry − lead", () => {
    const rt = at(30 * D);
    const times = [0, 0.25, 0.5, 0.999].map((r) =>
      planWhenIdle({ kind: "oauth2", refreshTokenExpiresAt: rt }, now, P, () => r).at.getTime(),
    );
    expect(new Set(times).size).toBe(4);
    for (const t of times) {
      expect(t).toBeGreaterThan(rt.getTime() - 3 * D - 2 * D);
      expect(t).toBeLessThanOrEqual(rt.getTime() - 3 * D);
    }
  });
});

describe("decideScheduled (a scheduled job that woke up)", () => {
  it.each([
    // Not due: someone refreshed meanwhile, or a failure set a later retry (beyond the 2 s slack).
    [
      "not due, active: reschedule at the row's time",
      row({ kind: "managed", lastUsedAt: at(-MIN), nextRefreshAt: at(10 * S) }),
      { refresh: false, reason: "not_due", at: at(10 * S), priority: PRIORITY.active },
    ],
    [
      "not due, idle OAuth2: reschedule at keep-alive priority",
      row({ kind: "oauth2", nextRefreshAt: at(26 * D) }),
      { refresh: false, reason: "not_due", at: at(26 * D), priority: PRIORITY.keepAlive },
    ],
    [
      "due within the 2 s slack, active: refresh",
      row({ kind: "managed", lastUsedAt: at(-MIN), nextRefreshAt: at(1_500) }),
      { refresh: true, purpose: "keep_fresh" },
    ],
    ["due, active OAuth2: keep fresh", row({ kind: "oauth2", lastUsedAt: at(-4 * MIN) }), { refresh: true, purpose: "keep_fresh" }],
    ["due, active managed: keep fresh", row({ kind: "managed", lastUsedAt: at(-4 * MIN) }), { refresh: true, purpose: "keep_fresh" }],
    // Rule 4: the user stopped using the token since the job was planned.
    [
      "due, managed user gone idle: no call, parked",
      row({ kind: "managed", lastUsedAt: at(-6 * MIN) }),
      { refresh: false, reason: "idle", plan: { purpose: "parked", at: at(30 * D), priority: PRIORITY.idle } },
    ],
    [
      "due, OAuth2 user gone idle, refresh token far from expiry: no call, keep-alive planned",
      row({ kind: "oauth2", lastUsedAt: at(-6 * MIN), refreshTokenExpiresAt: at(20 * D) }),
      { refresh: false, reason: "idle", plan: { purpose: "keep_alive", at: at(16 * D), priority: PRIORITY.keepAlive } },
    ],
    [
      "due, idle OAuth2 user inside the keep-alive window: keep alive",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(4 * D) }),
      { refresh: true, purpose: "keep_alive" },
    ],
    [
      "due, idle OAuth2 user at the window's first moment (expiry − lead − jitter): keep alive",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(5 * D) }),
      { refresh: true, purpose: "keep_alive" },
    ],
    [
      "due, idle OAuth2 user a second before the window: no call",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(5 * D + S) }),
      { refresh: false, reason: "idle", plan: { purpose: "keep_alive", at: at(5 * D + S - 3 * D - D), priority: PRIORITY.keepAlive } },
    ],
    [
      "due, idle OAuth2 user whose refresh token expired: refresh (Cal.com decides; a reconnect if it is dead)",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(-H) }),
      { refresh: true, purpose: "keep_alive" },
    ],
    [
      "due, idle OAuth2 user without a stored expiry: keep alive",
      row({ kind: "oauth2", refreshTokenExpiresAt: null }),
      { refresh: true, purpose: "keep_alive" },
    ],
    [
      "due, idle managed user in a failure streak: retry (its next_refresh_at is the request paths' cool-down)",
      row({ kind: "managed", lastFailureAt: at(-10 * S) }),
      { refresh: true, purpose: "keep_fresh" },
    ],
    [
      "due, idle OAuth2 user in a failure streak, far from its keep-alive window: retry",
      row({ kind: "oauth2", refreshTokenExpiresAt: at(20 * D), lastFailureAt: at(-10 * S) }),
      { refresh: true, purpose: "keep_alive" },
    ],
  ] as const)("%s", (_what, r, expected) => {
    expect(decideScheduled(r, now, P, half)).toEqual(expected);
  });

  it("a keep-alive planned for an idle OAuth2 user is a refresh when its job wakes, whatever the jitter drew", () => {
    for (const r of [0, 0.3, 0.7, 0.999]) {
      const refreshed = row({ kind: "oauth2", refreshTokenExpiresAt: at(30 * D) });
      const plan = planNextRefresh(refreshed, now, P, () => r);
      expect(plan.purpose).toBe("keep_alive");
      expect(decideScheduled({ ...refreshed, nextRefreshAt: plan.at }, plan.at, P, () => r)).toEqual({
        refresh: true,
        purpose: "keep_alive",
      });
    }
  });

  it("a parked managed user is parked again when its job wakes, without a call", () => {
    const parked = row({ kind: "managed", nextRefreshAt: at(30 * D) });
    const wake = at(30 * D);
    expect(decideScheduled(parked, wake, P, half)).toEqual({
      refresh: false,
      reason: "idle",
      plan: { purpose: "parked", at: new Date(wake.getTime() + 30 * D), priority: PRIORITY.idle },
    });
  });
});

describe("refreshTokenAtRisk (the alert)", () => {
  it.each([
    ["OAuth2, expires in 25 h", row({ kind: "oauth2", refreshTokenExpiresAt: at(25 * H) }), false],
    ["OAuth2, expires in exactly 24 h", row({ kind: "oauth2", refreshTokenExpiresAt: at(D) }), true],
    ["OAuth2, expires in 23 h", row({ kind: "oauth2", refreshTokenExpiresAt: at(23 * H) }), true],
    ["OAuth2, expired an hour ago (still ACTIVE: nobody has tried it)", row({ kind: "oauth2", refreshTokenExpiresAt: at(-H) }), true],
    ["OAuth2, reconnect required already", row({ kind: "oauth2", status: "RECONNECT_REQUIRED", refreshTokenExpiresAt: at(H) }), false],
    ["OAuth2 without a stored expiry", row({ kind: "oauth2", refreshTokenExpiresAt: null }), false],
    [
      "managed with a reported expiry in an hour (Cal.com does not enforce it)",
      row({ kind: "managed", refreshTokenExpiresAt: at(H) }),
      false,
    ],
  ])("%s → %p", (_what, r, expected) => {
    expect(refreshTokenAtRisk(r, now, P)).toBe(expected);
  });
});
