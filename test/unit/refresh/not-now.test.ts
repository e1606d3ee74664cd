import type { RefreshTrigger } from "../../../src/core/types.js";
import type { SeedRecord } from "../../fakes/in-memory-token-store.js";
import { refreshed, transient } from "../../fakes/scripted-calcom-api.js";
import { at, harness, summary, USER } from "./harness.js";

// Reasons not to call Cal.com for a user right now, decided on the row already read (refresher.ts
// notNow): the cool-down after a failure (shared by every process: it is the row's nextRefreshAt)
// and the minimum interval between two scheduled refreshes of one user.

const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };
/** A failure 10 s ago that scheduled the next try 20 s from now. */
const coolingDown: Partial<SeedRecord> = {
  failureCount: 1,
  firstFailureAt: at(-10_000),
  lastFailureAt: at(-10_000),
  lastFailureCode: "calcom.rate_limited",
  nextRefreshAt: at(20_000),
};

describe("cool-down after a failure", () => {
  it.each<[RefreshTrigger, boolean]>([
    ["on_demand", false],
    ["api_expired", false],
    ["manual", false],
    ["cli", false],
    ["on_demand", true],
  ])("%s (force %s): the stored failure, retryAfterMs until nextRefreshAt, the token, no call and no lease", async (trigger, force) => {
    const h = harness();
    const before = h.seed(coolingDown);
    const outcome = await h.refresh({ trigger, force });
    expect(summary(outcome)).toEqual({ ok: false, code: "calcom.rate_limited", retryable: true, retryAfterMs: 20_000, hasToken: true });
    expect(outcome.ok || outcome.error.message).toBe("Cal.com failed recently for this user; not calling again yet");
    expect(outcome.token).toEqual(before);
    expect(h.calcom.calls()).toEqual([]);
    expect(h.store.callCount("acquireLease")).toBe(0);
    expect(h.store.peek(USER)).toEqual(before);
    expect(h.observe()).toMatchObject({ audits: [], alerts: [], events: [] });
  });

  it("a stored code that is not one of ours cools down as calcom.transient", async () => {
    const h = harness();
    h.seed({ ...coolingDown, lastFailureCode: "legacy.weird" });
    expect(summary(await h.refresh({ trigger: "on_demand" }))).toMatchObject({ ok: false, code: "calcom.transient", retryAfterMs: 20_000 });
  });

  it("the worker ignores it: its schedule is the row's nextRefreshAt already", async () => {
    const h = harness();
    h.seed(coolingDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh({ trigger: "worker" }))).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
  });

  it.each([
    ["the retry time has come", { ...coolingDown, nextRefreshAt: at(0) }],
    ["there was no failure (nextRefreshAt is only the schedule)", { nextRefreshAt: at(20_000) }],
  ])("no cool-down when %s", async (_name, seed) => {
    const h = harness();
    h.seed(seed);
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh({ trigger: "on_demand" }))).toMatchObject({ ok: true, how: "refreshed" });
  });

  it("a 5xx storm: request paths call Cal.com once per backoff step, not once per request", async () => {
    const h = harness();
    h.seed({ accessTokenExpiresAt: at(-1_000) });
    h.calcom.script("refreshManaged", transient("server_error", false), transient("server_error", false));
    const outcomes = [];
    for (let i = 0; i < 40; i++) {
      outcomes.push(summary(await h.refresh({ trigger: "on_demand" })));
      h.advance(100);
    }
    // backoff(0) = 3 750 ms: the first call, then a second once the cool-down is over (at 3.8 s).
    expect(h.calcom.calls()).toHaveLength(2);
    expect(outcomes.every((o) => !o.ok && o.retryable)).toBe(true);
    expect(outcomes[1]).toEqual({ ok: false, code: "calcom.transient", retryable: true, retryAfterMs: 3_650, hasToken: true });
  });
});

describe("minimum interval between two refreshes", () => {
  const recent: Partial<SeedRecord> = { lastRefreshedAt: at(-10_000), accessTokenExpiresAt: at(60_000) };

  it("does not stop a refresh the row's schedule asks for (the row's nextRefreshAt is the only schedule)", async () => {
    const h = harness({ policy: { minIntervalMs: 60_000 } });
    h.seed(recent);
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh({ trigger: "worker" }))).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
  });

  it.each([
    // A 30 s token: the schedule alone would say 18 s (40 % of its life before expiry). The interval
    // wins even past the expiry: an expiry that is always "nearly now" must not loop the worker (a
    // request path refreshes a lapsed token inline).
    ["60 s", 60_000, 60_000],
    ["25 s", 25_000, 25_000],
    ["0", 18_000, 0],
  ])(
    "after a refresh, with a minimum interval of %s, a 30 s pair is next refreshed in %i ms (never before the interval)",
    async (_name, next, minIntervalMs) => {
      const h = harness({ policy: { minIntervalMs } });
      h.seed();
      h.calcom.script("refreshManaged", refreshed({ ...newPair, accessTokenExpiresAt: at(30_000) }));
      await h.refresh();
      expect(h.row()?.nextRefreshInMs).toBe(next);
    },
  );
});
