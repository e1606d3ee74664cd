import { refreshed, rejected, transient } from "../../fakes/scripted-calcom-api.js";
import { USER, at, harness, summary } from "./harness.js";

// Paths where a side channel (a hook, another writer, a lost lease) must not change what a refresh reports.

describe("an outcome hook that throws", () => {
  it("does not turn a saved pair into a failed write", async () => {
    const h = harness({
      onOutcome: () => {
        throw new Error("metrics exploded");
      },
    });
    h.seed();
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.store.callCount("saveRotated")).toBe(1);
  });

  it("does not turn a failure into a throw, and its audit row is still written", async () => {
    const h = harness({
      onOutcome: () => {
        throw new Error("metrics exploded");
      },
    });
    h.seed();
    h.calcom.script("refreshManaged", transient("timeout", false));
    expect(summary(await h.refresh())).toMatchObject({ ok: false, code: "calcom.timeout" });
    expect(h.observe().audits).toEqual([{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.timeout", version: null }]);
  });
});

describe("a transient failure after the row moved on during the call", () => {
  it("reports the newer pair, releases our lease and raises no alert", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", async () => {
      // A held pair written by another process while our call was in flight (owner "shared" keeps our lease).
      await h.store.saveRotated({
        userUlid: USER,
        expectedVersion: 1,
        owner: "shared",
        pair: { accessToken: "at_held", refreshToken: "rt_held", accessTokenExpiresAt: at(3_600_000), refreshTokenExpiresAt: null },
        nextRefreshAt: at(3_000_000),
        now: h.clock(),
      });
      return transient("timeout", true);
    });
    const out = summary(await h.refresh());
    expect(out).toEqual({ ok: true, how: "by_other", accessToken: "at_held", version: 2 });
    const seen = h.observe();
    expect(seen.alerts).toEqual([]);
    expect(seen.audits).toEqual([]);
    expect(seen.row?.leaseOwner).toBeNull();
    expect(seen.row?.rotationUncertain).toBe(false);
  });
});

describe("losing the lease before a force-refresh", () => {
  it("is a retryable lease timeout, not a success with the rejected token", async () => {
    const h = harness({ policy: { leaseMs: 5_000, callLeaseMs: 30_000 } });
    h.seed();
    h.calcom.script("refreshManaged", async () => {
      h.advance(31_000); // past the call lease taken right before this call
      expect((await h.store.acquireLease(USER, "other", 30_000)).kind).toBe("acquired");
      return rejected(400);
    });
    expect(summary(await h.refresh())).toEqual({
      ok: false,
      code: "refresh.lease_timeout",
      retryable: true,
      retryAfterMs: undefined,
      hasToken: true,
    });
    expect(h.calcom.callsOf("forceRefreshManaged")).toHaveLength(0);
  });

  it("a slow answer longer than the base lease but inside the call lease keeps the lease: nobody else can take it", async () => {
    const h = harness({ policy: { leaseMs: 5_000, callLeaseMs: 30_000 } });
    h.seed();
    let other: string | undefined;
    h.calcom
      .script("refreshManaged", async () => {
        h.advance(29_000);
        other = (await h.store.acquireLease(USER, "other", 30_000)).kind;
        return rejected(400);
      })
      .script("forceRefreshManaged", refreshed({ accessToken: "at_3", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "force_refreshed", accessToken: "at_3", version: 2 });
    expect(other).toBe("held");
  });
});
