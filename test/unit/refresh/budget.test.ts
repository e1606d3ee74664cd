import { callClassOf } from "../../../src/refresh/gates.js";
import { refreshed, rejected } from "../../fakes/scripted-calcom-api.js";
import { gated, newPair, nothingHappened, REASON, refreshUser2, seedUser2 } from "./gated.js";
import { at, summary, USER, USER_2 } from "./harness.js";

// The shared call budget before every token call (src/refresh/gates.ts): request paths may use all of
// it, background work stops short of a reserve, a force-refresh counts too, and a refusal changes
// nothing on the row.

describe("the call budget", () => {
  it.each([
    [0, 60_001],
    [59_900, 1_000], // the window has room again in ~100 ms: never ask a caller back sooner than 1 s
  ])(
    "refused %i ms into the window: refresh.budget_exhausted, retryAfterMs %i, no call, row unchanged, no audit",
    async (intoWindowMs, wait) => {
      const { h, budget } = gated({ ratePerMinute: 1 });
      h.advance(intoWindowMs);
      expect((await budget.take("request", h.clock())).ok).toBe(true); // another process used the budget
      const before = h.seed();
      const outcome = await h.refresh();
      expect(summary(outcome)).toEqual({
        ok: false,
        code: "refresh.budget_exhausted",
        retryable: true,
        retryAfterMs: wait,
        hasToken: true,
      });
      expect(h.observe()).toMatchObject(nothingHappened);
      expect(h.store.peek(USER)).toEqual(before);
    },
  );

  it.each([
    ["on_demand", "request"],
    ["api_expired", "request"],
    ["manual", "request"],
    ["worker", "background"],
    ["cli", "background"],
  ] as const)("%s draws on the %s share", (trigger, callClass) => {
    expect(callClassOf(trigger)).toBe(callClass);
  });

  it("background work stops short of the reserve; a request path still gets the reserved call", async () => {
    const { h, budget } = gated({ ratePerMinute: 2, reserve: 1 });
    h.seed();
    const user2 = seedUser2(h);
    h.calcom.script("refreshManaged", refreshed(newPair), refreshed({ accessToken: "at_user2_b", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh({ trigger: "worker" }))).toMatchObject({ ok: true, how: "refreshed" });
    expect(summary(await refreshUser2(h, "worker"))).toMatchObject({ ok: false, code: "refresh.budget_exhausted" });
    // The refusal left no trace on the row: no cool-down stands between the waiting user and Cal.com.
    expect(h.store.peek(USER_2)).toEqual(user2);
    expect(summary(await refreshUser2(h, "on_demand"))).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_user2_b" });
    expect(budget.takes()).toEqual([
      { callClass: "background", ok: true },
      { callClass: "background", ok: false },
      { callClass: "request", ok: true },
    ]);
  });

  it("a force-refresh after a rejection draws on the budget too (one take per token call)", async () => {
    const { h, budget } = gated();
    h.seed();
    h.calcom.script("refreshManaged", rejected(400)).script("forceRefreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "force_refreshed" });
    expect(budget.takes()).toEqual([
      { callClass: "background", ok: true },
      { callClass: "background", ok: true },
    ]);
  });

  it("a force-refresh the budget refuses is a retryable failure, never a success; the row keeps its pair and lease state, its token marked rejected", async () => {
    const { h } = gated({ ratePerMinute: 2, reserve: 1 });
    const before = h.seed();
    h.calcom.script("refreshManaged", rejected(400));
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({
      ok: false,
      code: "refresh.budget_exhausted",
      retryable: true,
      retryAfterMs: 60_001,
      hasToken: true,
    });
    expect(h.observe()).toMatchObject({ ...nothingHappened, calls: [{ method: "refreshManaged", arg: "rt_1" }] });
    // A refusal by the budget is not the user's failure: no streak, no cool-down; only the mark.
    expect(h.store.peek(USER)).toEqual({ ...before, refreshTokenRejected: true });

    // When the budget allows again (the sliding window has let go of both calls), the retry goes
    // straight to the force-refresh.
    h.advance(120_002);
    h.calcom.script("forceRefreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "force_refreshed", accessToken: "at_2" });
    expect(h.calcom.calls()).toEqual([
      { method: "refreshManaged", arg: "rt_1" },
      { method: "forceRefreshManaged", arg: 42 },
    ]);
    expect(h.store.peek(USER)?.refreshTokenRejected).toBe(false);
  });

  it("a force-refresh does not ask the breaker again: the refresh call just passed it", async () => {
    const { h, breaker } = gated();
    h.seed();
    h.calcom
      .script("refreshManaged", async () => {
        await breaker.trip(REASON, h.clock()); // another process's config error, during our call
        return rejected(400);
      })
      .script("forceRefreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "force_refreshed", accessToken: "at_2" });
  });
});
