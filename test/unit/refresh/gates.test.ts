import type { RefreshOutcome } from "../../../src/refresh/types.js";
import { createInMemoryCallBudget, createInMemoryConfigBreaker } from "../../fakes/in-memory-fleet.js";
import { configError, refreshed, rejected, transient } from "../../fakes/scripted-calcom-api.js";
import { gated, message, newPair, nothingHappened, REASON, refreshUser2, seedUser2, TIMING } from "./gated.js";
import { at, harness, summary, T0, USER, USER_2 } from "./harness.js";

// The configuration breaker before every token call (src/refresh/gates.ts): while it is open no call
// reaches Cal.com except one probe, and nothing about any user changes. The call budget: budget.test.ts.

describe("an open configuration breaker", () => {
  it.each([
    ["worker", 5_000, 10_000],
    ["on_demand", 5_000, 10_000],
    ["on_demand", 14_800, 1_000], // the probe is 200 ms away: never ask a caller back sooner than 1 s
  ] as const)(
    "%s, opened %i ms ago: no call, retryAfterMs %i until the probe, row unchanged, no audit, no budget spent",
    async (trigger, agoMs, wait) => {
      const { h, breaker, budget } = gated();
      await breaker.trip(REASON, at(-agoMs));
      const before = h.seed();
      const outcome = await h.refresh({ trigger });
      expect(summary(outcome)).toEqual({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: wait, hasToken: true });
      expect(message(outcome)).toContain("suspended");
      // What the breaker says in Redis stays out of results (anyone who can write Redis could write it).
      expect(message(outcome)).not.toContain(REASON);
      expect(outcome.token?.accessToken).toBe("at_1");
      expect(h.observe()).toMatchObject(nothingHappened);
      expect(h.store.peek(USER)).toEqual(before);
      expect(budget.takes()).toEqual([]);
    },
  );

  it("a due probe: this refresh claims it and makes the one call; meanwhile another user's refresh is refused", async () => {
    const { h, breaker } = gated();
    await breaker.trip(REASON, at(-15_000)); // probe due at T0
    h.seed();
    seedUser2(h);
    let meanwhile: RefreshOutcome | undefined;
    h.calcom.script("refreshManaged", async () => {
      meanwhile = await refreshUser2(h);
      return transient("server_error", false);
    });
    expect(summary(await h.refresh())).toMatchObject({ ok: false, code: "calcom.transient" });
    expect(summary(meanwhile!)).toEqual({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: 1_000, hasToken: true });
    expect(h.calcom.callsOf("refreshManaged")).toEqual(["rt_1"]);
    // A probe that proves nothing keeps the breaker open, and its slot claimed until probeLeaseMs.
    expect(breaker.peek()).toMatchObject({ probeAt: T0.getTime(), probeUntil: T0.getTime() + TIMING.probeLeaseMs });
    expect(h.alerts.kinds()).not.toContain("callsResumed");
    expect(await refreshUser2(h)).toMatchObject({ ok: false, error: { code: "calcom.config_error" } });
    expect(h.calcom.calls()).toHaveLength(1);
  });

  it("a probe answered with a rejection keeps it open: only a new pair proves the configuration works", async () => {
    const { h, breaker } = gated();
    await breaker.trip(REASON, at(-15_000));
    h.seed({ kind: "oauth2", calUserId: null });
    seedUser2(h, { kind: "managed", calUserId: 43 });
    h.calcom.script("refreshOAuth2", rejected(400, "invalid_grant"));
    await h.refresh();
    expect(breaker.peek()).not.toBeNull();
    expect(h.alerts.kinds()).not.toContain("callsResumed");
    expect(await refreshUser2(h)).toMatchObject({ ok: false, error: { code: "calcom.config_error" } });
    expect(h.calcom.calls()).toHaveLength(1);
  });

  it.each([["refreshed", "managed", () => refreshed(newPair), "refreshManaged"]] as const)(
    "a probe answered %s closes it for everyone: callsResumed once, the next user is called without a probe",
    async (_name, kind, answer, method) => {
      const { h, breaker } = gated();
      await breaker.trip(REASON, at(-15_000));
      h.seed({ kind, calUserId: kind === "managed" ? 42 : null });
      seedUser2(h, { kind: "managed", calUserId: 43 });
      h.calcom
        .script(method, answer())
        .script("refreshManaged", refreshed({ accessToken: "at_user2_b", accessTokenExpiresAt: at(3_600_000) }));
      await h.refresh();
      expect(breaker.peek()).toBeNull();
      expect(h.alerts.calls.filter((c) => c.kind === "callsResumed")).toEqual([{ kind: "callsResumed", input: { now: T0 } }]);
      expect(summary(await refreshUser2(h))).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_user2_b" });
      expect(h.alerts.kinds().filter((k) => k === "callsResumed")).toHaveLength(1);
    },
  );

  it("a probe answered with a config_error again: still open, the next probe backed off, no second callsSuspended, row unchanged", async () => {
    const { h, breaker } = gated();
    await breaker.trip(REASON, at(-15_000));
    const before = h.seed();
    h.calcom.script("refreshManaged", configError(403));
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: undefined, hasToken: true });
    expect(message(outcome)).toContain("client configuration");
    expect(breaker.peek()).toMatchObject({ probes: 1, probeAt: T0.getTime() + 2 * TIMING.probeDelayMs, probeUntil: 0 });
    expect(h.alerts.kinds()).toEqual([]);
    expect(h.store.peek(USER)).toEqual(before);
    expect(h.observe().audits).toEqual([{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error", version: null }]);
  });
});

describe("a config_error while the breaker is closed", () => {
  it("from the force-refresh after a rejection trips it too (a 403 there stops the fleet, not just this user)", async () => {
    const { h, breaker } = gated();
    h.seed();
    h.calcom.script("refreshManaged", rejected(400)).script("forceRefreshManaged", configError(403));
    await h.refresh();
    expect(breaker.peek()).not.toBeNull();
    expect(h.alerts.kinds()).toEqual(["callsSuspended"]);
  });

  it("opens it once: one callsSuspended across several refreshes and processes, no further call until the probe", async () => {
    const { h, breaker } = gated();
    const before = h.seed();
    seedUser2(h);
    h.calcom.script("refreshManaged", configError(401));
    const first = await h.refresh({ trigger: "on_demand" });
    expect(summary(first)).toEqual({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: undefined, hasToken: true });
    expect(breaker.peek()).toMatchObject({ reason: REASON, openedAt: T0.getTime(), probeAt: T0.getTime() + TIMING.probeDelayMs });
    expect(h.alerts.calls).toEqual([{ kind: "callsSuspended", input: { reason: REASON, now: T0 } }]);

    const otherProcess = h.build();
    h.advance(1_000);
    const refused = [
      await refreshUser2(h),
      await h.refresh({ trigger: "api_expired" }),
      await otherProcess.refresh({ userUlid: USER_2, trigger: "worker" }),
    ];
    for (const r of refused)
      expect(summary(r)).toMatchObject({ ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: 14_000 });
    expect(h.calcom.calls()).toHaveLength(1);
    expect(h.alerts.kinds()).toEqual(["callsSuspended"]);
    // Nobody's state moved: no failure streak, so no cool-down and no next refresh pushed out.
    expect(h.store.peek(USER)).toEqual(before);
    expect(h.observe().audits).toHaveLength(1);
  });

  it("two processes refused at once: the breaker opens once, one callsSuspended", async () => {
    const { h, breaker } = gated();
    h.seed();
    seedUser2(h);
    let answer!: () => void;
    const answered = new Promise<void>((r) => {
      answer = r;
    });
    const slowConfigError = async () => {
      await answered;
      return configError(401);
    };
    h.calcom.script("refreshManaged", slowConfigError, slowConfigError);
    const a = h.refresh();
    const b = h.build().refresh({ userUlid: USER_2, trigger: "worker" });
    await new Promise<void>((r) => setImmediate(r));
    expect(h.calcom.calls()).toHaveLength(2); // both passed the closed breaker
    answer();
    await Promise.all([a, b]);
    expect(breaker.peek()).toMatchObject({ probes: 1 });
    expect(h.alerts.kinds()).toEqual(["callsSuspended"]);
  });
});

describe("gates that do not answer", () => {
  it("a breaker and a budget that throw (Redis down) are treated as open: the lease still guards the user", async () => {
    const breaker = createInMemoryConfigBreaker({ timing: TIMING });
    breaker.state = async () => {
      throw new Error("ECONNREFUSED 127.0.0.1:6379");
    };
    const budget = createInMemoryCallBudget({ ratePerMinute: 1 });
    budget.take = async () => {
      throw new Error("ECONNREFUSED 127.0.0.1:6379");
    };
    const h = harness({ breaker, budget });
    h.seed();
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
  });
});
