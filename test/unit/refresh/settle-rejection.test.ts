import type { CalRefreshResult } from "../../../src/core/calcom-result.js";
import { configError, rateLimited, refreshed, rejected, transient } from "../../fakes/scripted-calcom-api.js";
import { at, harness, type OutcomeSummary, summary, USER } from "./harness.js";

// A 400/404 from the refresh endpoint for a managed user with a calUserId: re-read, then force-refresh
// under an extended lease. (No force-refresh route, or a row that moved on: settle-reconnect.test.ts.)

const refreshCall = { method: "refreshManaged", arg: "rt_1" } as const;
const forceCall = { method: "forceRefreshManaged", arg: 42 } as const;
const reconnectOutcome: OutcomeSummary = {
  ok: false,
  code: "token.reconnect_required",
  retryable: false,
  retryAfterMs: undefined,
  hasToken: true,
};

describe("rejected, managed user with a calUserId: force-refresh once", () => {
  const rows: [string, CalRefreshResult, OutcomeSummary, Record<string, unknown>][] = [
    [
      "force-refresh succeeds → FORCE_REFRESHED",
      refreshed({ accessToken: "at_3", refreshToken: "rt_3", accessTokenExpiresAt: at(3_600_000) }),
      { ok: true, how: "force_refreshed", accessToken: "at_3", version: 2 },
      {
        row: {
          version: 2,
          status: "ACTIVE",
          accessToken: "at_3",
          refreshToken: "rt_3",
          failureCount: 0,
          rotationUncertain: false,
          lastFailureCode: null,
          nextRefreshInMs: 3_270_000,
          leaseOwner: null,
        },
        audits: [{ outcome: "FORCE_REFRESHED", errorCode: null, version: 2 }],
        // The force path marks the rotation uncertain, so `recovered` is sent (a no-op for the sink without an open alert).
        alerts: ["recovered"],
        events: [{ outcome: "FORCE_REFRESHED", errorCode: null }],
      },
    ],
    [
      "force-refresh rejected too → RECONNECT_REQUIRED with an alert",
      rejected(404),
      reconnectOutcome,
      {
        row: {
          version: 1,
          status: "RECONNECT_REQUIRED",
          accessToken: "at_1",
          refreshToken: "rt_1",
          failureCount: 0,
          rotationUncertain: false,
          lastFailureCode: "token.reconnect_required",
          nextRefreshInMs: 0,
          leaseOwner: null,
        },
        audits: [{ outcome: "RECONNECT_REQUIRED", errorCode: "token.reconnect_required", version: null }],
        alerts: ["reconnectRequired"],
        events: [{ outcome: "RECONNECT_REQUIRED", errorCode: "token.reconnect_required" }],
      },
    ],
    [
      "force-refresh times out → retryable failure, rotation uncertain (the old refresh token is dead)",
      transient("timeout", false),
      { ok: false, code: "calcom.timeout", retryable: true, retryAfterMs: undefined, hasToken: true },
      {
        row: {
          version: 1,
          status: "ACTIVE",
          accessToken: "at_1",
          refreshToken: "rt_1",
          failureCount: 1,
          rotationUncertain: true,
          lastFailureCode: "calcom.timeout",
          nextRefreshInMs: 3_750,
          leaseOwner: null,
        },
        audits: [{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.timeout", version: null }],
        alerts: ["refreshFailing"],
        events: [{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.timeout" }],
      },
    ],
    [
      "force-refresh rate limited → retry after the reset, rotation uncertain",
      rateLimited(30_000),
      { ok: false, code: "calcom.rate_limited", retryable: true, retryAfterMs: 30_000, hasToken: true },
      {
        row: {
          version: 1,
          status: "ACTIVE",
          accessToken: "at_1",
          refreshToken: "rt_1",
          failureCount: 1,
          rotationUncertain: true,
          lastFailureCode: "calcom.rate_limited",
          nextRefreshInMs: 30_000,
          leaseOwner: null,
        },
        audits: [{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.rate_limited", version: null }],
        alerts: ["refreshFailing"],
        events: [{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.rate_limited" }],
      },
    ],
    [
      "force-refresh refused our credentials → CONFIG_ERROR, row unchanged",
      configError(403),
      { ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: undefined, hasToken: true },
      {
        row: {
          version: 1,
          status: "ACTIVE",
          accessToken: "at_1",
          refreshToken: "rt_1",
          failureCount: 0,
          rotationUncertain: false,
          lastFailureCode: null,
          nextRefreshInMs: 0,
          leaseOwner: null,
        },
        audits: [{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error", version: null }],
        alerts: [],
        events: [{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error" }],
      },
    ],
  ];

  describe.each([400, 404])("refresh answered %i", (status) => {
    it.each(rows)("%s", async (_name, forced, outcome, after) => {
      const h = harness();
      h.seed();
      h.calcom.script("refreshManaged", rejected(status)).script("forceRefreshManaged", forced);
      expect(summary(await h.refresh())).toEqual(outcome);
      expect(h.observe()).toEqual({ ...after, calls: [refreshCall, forceCall] });
    });
  });

  it("runs the force-refresh under a call lease extended at the rejection, not the original one", async () => {
    const h = harness({ policy: { leaseMs: 10_000, callLeaseMs: 25_000 } });
    h.seed();
    let leaseUntil: Date | null | undefined;
    h.calcom
      .script("refreshManaged", () => {
        h.advance(20_000); // a slow answer
        return rejected(400);
      })
      .script("forceRefreshManaged", () => {
        leaseUntil = h.store.peek(USER)?.leaseUntil;
        return rejected(404);
      });
    await h.refresh();
    expect(leaseUntil).toEqual(at(20_000 + h.policy.callLeaseMs));
  });

  it("retries the force-refreshed pair's write against the extended lease", async () => {
    const h = harness({ policy: { callLeaseMs: 30_000 } });
    h.seed();
    h.store.failAll("saveRotated", () => new Error("connection terminated"));
    h.calcom
      .script("refreshManaged", () => {
        h.advance(27_000); // only 3 s left of the refresh call's lease
        return rejected(400);
      })
      .script("forceRefreshManaged", refreshed({ accessToken: "at_3", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "force_refreshed", accessToken: "at_3" });
    expect(h.sleeps).toEqual([250, 500, 1_000, 2_000, 4_000]); // all 6 attempts, not 5
    expect(h.refresher.heldPairs.size()).toBe(1);
  });

  it("does not force-refresh when another owner took the lapsed call lease during a slow rejection", async () => {
    const h = harness({ policy: { leaseMs: 5_000, callLeaseMs: 30_000 } });
    h.seed();
    h.calcom.script("refreshManaged", async () => {
      h.advance(h.policy.callLeaseMs + 1_000);
      expect((await h.store.acquireLease(USER, "other", h.policy.leaseMs)).kind).toBe("acquired");
      return rejected(400);
    });
    expect(summary(await h.refresh())).toEqual({
      ok: false,
      code: "refresh.lease_timeout",
      retryable: true,
      retryAfterMs: undefined,
      hasToken: true,
    });
    expect(h.observe()).toMatchObject({
      calls: [refreshCall],
      audits: [],
      alerts: [],
      events: [],
      row: { version: 1, status: "ACTIVE", leaseOwner: "other" },
    });
  });
});
