import type { CalRefreshResult } from "../../../src/core/calcom-result.js";
import { configError, malformed, rateLimited, refreshed, transient } from "../../fakes/scripted-calcom-api.js";
import { at, harness, summary, T0, USER } from "./harness.js";

// Settling one Cal.com answer to a plain refresh (rejections: settle-rejection.test.ts).
// rand() = 0.5 throughout, so backoff(n) = 3 750 ms · 2^n (capped at 225 000 ms).

const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };

describe("settle: refreshed", () => {
  it("persists the rotated pair: version + 1, REFRESHED audit and event, lease released, no alert", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.observe()).toEqual({
      // nextRefreshAt = expiry − (lead 300 s + 0.5 · jitter 60 s)
      row: {
        version: 2,
        status: "ACTIVE",
        accessToken: "at_2",
        refreshToken: "rt_2",
        failureCount: 0,
        rotationUncertain: false,
        lastFailureCode: null,
        nextRefreshInMs: 3_270_000,
        leaseOwner: null,
      },
      audits: [{ outcome: "REFRESHED", errorCode: null, version: 2 }],
      calls: [{ method: "refreshManaged", arg: "rt_1" }],
      alerts: [],
      events: [{ outcome: "REFRESHED", errorCode: null }],
    });
  });

  it("refreshes an OAuth2 grant through the OAuth2 endpoint with the stored refresh token", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null });
    h.calcom.script("refreshOAuth2", refreshed(newPair));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.observe()).toMatchObject({
      calls: [{ method: "refreshOAuth2", arg: "rt_1" }],
      alerts: [],
      audits: [{ outcome: "REFRESHED", version: 2 }],
    });
  });

  it.each([
    ["a failure count", { failureCount: 2, firstFailureAt: at(-600_000), lastFailureAt: at(-60_000), lastFailureCode: "calcom.timeout" }],
    ["an uncertain rotation", { rotationUncertain: true }],
    ["a first failure time", { firstFailureAt: at(-1_000) }],
  ])("after a streak marked by %s, clears it and raises `recovered`", async (_what, streak) => {
    const h = harness();
    h.seed(streak);
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed" });
    expect(h.observe()).toMatchObject({
      row: { version: 2, failureCount: 0, rotationUncertain: false, lastFailureCode: null, leaseOwner: null },
      alerts: ["recovered"],
    });
    expect(h.store.peek(USER)?.firstFailureAt).toBeNull();
    expect(h.alerts.calls[0]?.input).toEqual({ userUlid: USER, kind: "managed", now: T0 });
  });
});

type FailureRow = [
  name: string,
  result: CalRefreshResult,
  code: string,
  retryAfterMs: number | undefined,
  rotationUncertain: boolean,
  nextRefreshInMs: number,
];

describe("settle: retryable failures", () => {
  it.each<FailureRow>([
    ["429 with a long reset: retry at the reset", rateLimited(60_000), "calcom.rate_limited", 60_000, false, 60_000],
    ["429 with a short reset: backoff wins for the schedule", rateLimited(1_000), "calcom.rate_limited", 1_000, false, 3_750],
    ["timeout after sending (may have rotated)", transient("timeout", true), "calcom.timeout", undefined, true, 3_750],
    ["timeout before sending", transient("timeout", false), "calcom.timeout", undefined, false, 3_750],
    ["dropped connection (may have rotated)", transient("network", true), "calcom.transient", undefined, true, 3_750],
    ["connection refused", transient("network", false), "calcom.transient", undefined, false, 3_750],
    ["502 from the gateway (may have rotated)", transient("server_error", true), "calcom.transient", undefined, true, 3_750],
    ["503", transient("server_error", false), "calcom.transient", undefined, false, 3_750],
    ["unreadable 2xx (may have rotated)", malformed(200, true), "calcom.malformed_response", undefined, true, 3_750],
    ["unreadable 4xx", malformed(422, false), "calcom.malformed_response", undefined, false, 3_750],
  ])(
    "%s → failure bookkeeping, FAILED_TRANSIENT, refresh_failing alert",
    async (_name, result, code, retryAfterMs, rotationUncertain, nextRefreshInMs) => {
      const h = harness();
      h.seed();
      h.calcom.script("refreshManaged", result);
      const outcome = await h.refresh();
      expect(summary(outcome)).toEqual({ ok: false, code, retryable: true, retryAfterMs, hasToken: true });
      expect(h.observe()).toEqual({
        row: {
          version: 1,
          status: "ACTIVE",
          accessToken: "at_1",
          refreshToken: "rt_1",
          failureCount: 1,
          rotationUncertain,
          lastFailureCode: code,
          nextRefreshInMs,
          leaseOwner: null,
        },
        audits: [{ outcome: "FAILED_TRANSIENT", errorCode: code, version: null }],
        calls: [{ method: "refreshManaged", arg: "rt_1" }],
        alerts: ["refreshFailing"],
        events: [{ outcome: "FAILED_TRANSIENT", errorCode: code }],
      });
      expect(h.alerts.calls[0]?.input).toEqual({
        userUlid: USER,
        kind: "managed",
        code,
        accessTokenExpiresAt: at(60_000),
        firstFailureAt: T0,
        now: T0,
      });
      if (retryAfterMs !== undefined) expect(h.row()!.nextRefreshInMs).toBeGreaterThanOrEqual(retryAfterMs);
    },
  );

  it("keeps an uncertain rotation uncertain when the next failure could not have rotated", async () => {
    const h = harness();
    h.seed({ rotationUncertain: true });
    h.calcom.script("refreshManaged", transient("network", false));
    await h.refresh();
    expect(h.row()).toMatchObject({ rotationUncertain: true, failureCount: 1 });
  });

  it.each([
    [1, 7_500],
    [2, 15_000],
    [3, 30_000],
    [10, 225_000],
  ])("backoff grows with the failure count: count %i → next try in %i ms (count unchanged within the window)", async (count, delay) => {
    const h = harness();
    h.seed({ failureCount: count, firstFailureAt: at(-1_000), lastFailureAt: at(-1_000), lastFailureCode: "calcom.transient" });
    h.calcom.script("refreshManaged", transient("server_error", false));
    await h.refresh();
    expect(h.row()).toMatchObject({ failureCount: count, nextRefreshInMs: delay });
  });

  it.each([
    ["4 minutes old: retried after its age", 240_000, 1, 240_000],
    ["2 hours old: age capped at 5 minutes; the count catches up with the windows", 7_200_000, 3, 300_000],
  ])("a streak %s", async (_name, ageMs, countAfter, delay) => {
    const h = harness();
    h.seed({ failureCount: 1, firstFailureAt: at(-ageMs), lastFailureAt: at(-1_000), lastFailureCode: "calcom.transient" });
    h.calcom.script("refreshManaged", transient("timeout", false));
    await h.refresh();
    expect(h.row()).toMatchObject({ failureCount: countAfter, nextRefreshInMs: delay });
  });

  it("counts failures once per failure window, not once per attempt", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", transient("timeout", false), transient("timeout", false), transient("timeout", false));
    await h.refresh();
    h.advance(10 * 60_000);
    await h.refresh();
    expect(h.row()?.failureCount).toBe(1);
    h.advance(55 * 60_000);
    await h.refresh();
    expect(h.row()?.failureCount).toBe(2);
    expect(h.calcom.callsOf("refreshManaged")).toEqual(["rt_1", "rt_1", "rt_1"]);
  });
});

describe("settle: config_error", () => {
  // Retryable since issue 7: the fleet breaker (gates.test.ts) stops further calls, and a probe resumes them by itself.
  it.each([401, 403])("%i: retryable, lease released, CONFIG_ERROR audit, no alert, row otherwise unchanged", async (status) => {
    const h = harness();
    h.seed();
    const before = h.store.peek(USER);
    h.calcom.script("refreshManaged", configError(status));
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: undefined, hasToken: true });
    expect(outcome.ok || outcome.error.message).toBe(`Cal.com rejected the client configuration (${status})`);
    expect("retryAfterMs" in outcome).toBe(false);
    expect(h.store.peek(USER)).toEqual(before);
    expect(h.observe()).toMatchObject({
      audits: [{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error", version: null }],
      calls: [{ method: "refreshManaged", arg: "rt_1" }],
      alerts: [],
      events: [{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error" }],
    });
  });

  it("releases the lease it took (the row's lease is ours while Cal.com answers)", async () => {
    const h = harness();
    h.seed();
    let leaseDuringCall: string | null | undefined;
    h.calcom.script("refreshManaged", () => {
      leaseDuringCall = h.row()?.leaseOwner;
      return configError(401);
    });
    await h.refresh();
    expect(leaseDuringCall).toBe("us");
    expect(h.row()?.leaseOwner).toBeNull();
  });
});
