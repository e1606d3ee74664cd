import { refreshed, transient } from "../../fakes/scripted-calcom-api.js";
import { at, harness, pairOf, summary, USER } from "./harness.js";

// Before Cal.com is called: the row read, the lease (or the wait for it), and what the lease re-read shows.

const nothingHappened = { calls: [], audits: [], alerts: [], events: [] };
const heldByOther = { leaseOwner: "other", leaseUntil: at(3_600_000) };

describe("waiting for another owner's lease", () => {
  // A live holder extends its lease for each Cal.com call (a refresh and a force-refresh), so a waiter
  // gives up only after 2 × callLeaseMs + leaseMs: here 2 × 7 s + 4 s = 18 s (it was leaseMs + 5 s = 9 s).
  it.each([
    [0.5, 40, 451],
    [0, 20, 901],
  ])(
    "rand %s: polls every %i ms and gives up after 2 × callLeaseMs + leaseMs with lease_timeout (%i polls)",
    async (rand, pollMs, polls) => {
      const h = harness({ rand: () => rand, policy: { leaseMs: 4_000, callLeaseMs: 7_000 } });
      h.seed(heldByOther);
      const giveUpMs = 2 * h.policy.callLeaseMs + h.policy.leaseMs;
      const outcome = await h.refresh();
      expect(summary(outcome)).toEqual({
        ok: false,
        code: "refresh.lease_timeout",
        retryable: true,
        retryAfterMs: undefined,
        hasToken: true,
      });
      expect(h.sleeps).toHaveLength(polls);
      expect(new Set(h.sleeps)).toEqual(new Set([pollMs]));
      expect(h.now.getTime() - at(0).getTime()).toBeGreaterThan(giveUpMs);
      expect(h.now.getTime() - at(0).getTime()).toBeLessThanOrEqual(giveUpMs + pollMs);
      expect(h.observe()).toMatchObject({ ...nothingHappened, row: { version: 1, leaseOwner: "other" } });
    },
  );

  it("the version moves while the lease is still held (another writer) → by_other, without waiting further", async () => {
    const h = harness();
    h.seed(heldByOther);
    h.duringSleep.push(() =>
      h.store.saveRotated({
        userUlid: USER,
        expectedVersion: 1,
        owner: "shared",
        pair: pairOf({ accessToken: "at_other" }),
        nextRefreshAt: at(3_000_000),
        now: h.clock(),
      }),
    );
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_other", version: 2 });
    expect(h.sleeps).toHaveLength(1);
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { leaseOwner: "other" } });
  });

  it("the holder finishes its refresh → we take the lease, see the new version, release it: by_other", async () => {
    const h = harness();
    h.seed(heldByOther);
    h.duringSleep.push(() =>
      h.store.saveRotated({
        userUlid: USER,
        expectedVersion: 1,
        owner: "other",
        pair: pairOf({ accessToken: "at_other" }),
        nextRefreshAt: at(3_000_000),
        now: h.clock(),
      }),
    );
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_other", version: 2 });
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { version: 2, leaseOwner: null } });
    expect(h.store.callCount("acquireLease")).toBe(2);
  });

  it.each([
    ["calcom.timeout", "calcom.timeout"],
    ["calcom.rate_limited", "calcom.rate_limited"],
    ["something.unknown", "calcom.transient"],
  ])("the holder records a failure (%s) → we share it as %s without calling Cal.com, lease released", async (stored, code) => {
    const h = harness();
    h.seed(heldByOther);
    h.duringSleep.push(() =>
      h.store.recordFailure({
        userUlid: USER,
        expectedVersion: 1,
        owner: "other",
        code: stored,
        rotationUncertain: false,
        nextRefreshAt: at(60_000),
        failureWindowMs: 3_600_000,
        now: h.clock(),
      }),
    );
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: false, code, retryable: true, retryAfterMs: undefined, hasToken: true });
    expect(outcome.ok || outcome.error.message).toBe("a concurrent refresh attempt just failed");
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { failureCount: 1, leaseOwner: null } });
  });

  it("a failure recorded before this refresh started does not stop it", async () => {
    const h = harness();
    h.seed({ failureCount: 1, firstFailureAt: at(-60_000), lastFailureAt: at(-1), lastFailureCode: "calcom.timeout" });
    h.calcom.script("refreshManaged", transient("timeout", false));
    expect(summary(await h.refresh())).toMatchObject({ ok: false, code: "calcom.timeout" });
    expect(h.calcom.calls()).toEqual([{ method: "refreshManaged", arg: "rt_1" }]);
  });

  it("the holder marks the user RECONNECT_REQUIRED → reconnect failure, no call, lease released", async () => {
    const h = harness();
    h.seed(heldByOther);
    h.duringSleep.push(() =>
      h.store.markReconnectRequired({
        userUlid: USER,
        expectedVersion: 1,
        owner: "other",
        code: "token.reconnect_required",
        now: h.clock(),
      }),
    );
    expect(summary(await h.refresh())).toEqual({
      ok: false,
      code: "token.reconnect_required",
      retryable: false,
      retryAfterMs: undefined,
      hasToken: true,
    });
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { status: "RECONNECT_REQUIRED", leaseOwner: null } });
  });
});

describe("the lease's length", () => {
  it("takes the short base lease to decide, and extends it to the call lease right before the Cal.com call", async () => {
    const asked: number[] = [];
    const h = harness({
      policy: { leaseMs: 2_000, callLeaseMs: 9_000 },
      wrapStore: (s) => ({
        ...s,
        acquireLease: (u, owner, forMs) => {
          asked.push(forMs);
          return s.acquireLease(u, owner, forMs);
        },
      }),
    });
    h.seed();
    let during: Date | null | undefined;
    h.calcom.script("refreshManaged", () => {
      during = h.store.peek(USER)?.leaseUntil;
      return refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) });
    });
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed" });
    expect(asked).toEqual([2_000, 9_000]);
    expect(during).toEqual(at(9_000));
  });

  it("a dead holder's base lease stops blocking others once it lapses (seconds, not a minute)", async () => {
    const h = harness({ policy: { leaseMs: 3_000, callLeaseMs: 30_000 } });
    h.seed({ leaseOwner: "dead-process:1", leaseUntil: at(3_000) });
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
    // Free once lease_until < the store's clock: the first poll after 3 000 ms.
    expect(h.now.getTime() - at(0).getTime()).toBeGreaterThan(3_000);
    expect(h.now.getTime() - at(0).getTime()).toBeLessThanOrEqual(3_040);
    expect(h.row()?.leaseOwner).toBeNull();
  });
});

describe("what the lease re-read shows", () => {
  it("a version newer than the caller observed → by_other, lease released, no call", async () => {
    const h = harness();
    h.seed({ version: 5, accessToken: "at_5" });
    expect(summary(await h.refresh({ observedVersion: 4 }))).toEqual({ ok: true, how: "by_other", accessToken: "at_5", version: 5 });
    expect(h.store.callCount("acquireLease")).toBe(1);
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { leaseOwner: null } });
  });

  it("reuses the caller's read (knownToken) instead of reading the row again", async () => {
    const h = harness();
    const known = h.seed();
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh({ knownToken: known }))).toMatchObject({ ok: true, how: "refreshed", version: 2 });
    expect(h.store.callCount("get")).toBe(0);
  });
});

describe("before the lease: no Cal.com call", () => {
  it.each([
    ["no row", () => undefined, { code: "token.not_found", retryable: false, hasToken: false }],
    [
      "a row that cannot be decrypted",
      (h: H) => {
        h.seed();
        h.store.setUndecryptable(USER);
      },
      { code: "token.decrypt_failed", retryable: false, hasToken: false },
    ],
    [
      "the store failing to read",
      (h: H) => {
        h.seed();
        h.store.failNext("get", new Error("ECONNREFUSED 10.0.0.5:5432"));
      },
      { code: "store.unavailable", retryable: true, hasToken: false },
    ],
    [
      "the lease statement failing",
      (h: H) => {
        h.seed();
        h.store.failNext("acquireLease", new Error("ECONNREFUSED 10.0.0.5:5432"));
      },
      { code: "store.unavailable", retryable: true, hasToken: true },
    ],
    [
      "a RECONNECT_REQUIRED row",
      (h: H) => h.seed({ status: "RECONNECT_REQUIRED" }),
      { code: "token.reconnect_required", retryable: false, hasToken: true },
    ],
  ])("%s → failure", async (_name, arrange: (h: H) => unknown, expected) => {
    const h = harness();
    arrange(h);
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: false, retryAfterMs: undefined, ...expected });
    expect(outcome.ok || outcome.error.message).not.toContain("10.0.0.5");
    expect(h.observe()).toMatchObject(nothingHappened);
    expect(h.row()?.leaseOwner ?? null).toBeNull();
  });

  it("a RECONNECT_REQUIRED row does not even take the lease", async () => {
    const h = harness();
    h.seed({ status: "RECONNECT_REQUIRED" });
    await h.refresh();
    expect(h.store.callCount("acquireLease")).toBe(0);
  });

  it("a caller's row that vanished by the lease → not_found; one that no longer decrypts → decrypt_failed, lease handed back", async () => {
    const h = harness();
    const known = h.seed();
    const ghost = { ...known, userUlid: "01HZX3K8V2Q7W9M4T6R5Y0AB9Z" };
    expect(summary(await h.refresher.refresh({ userUlid: ghost.userUlid, trigger: "on_demand", knownToken: ghost }))).toMatchObject({
      ok: false,
      code: "token.not_found",
      hasToken: false,
    });
    h.store.setUndecryptable(USER);
    const outcome = await h.refresh({ knownToken: known });
    expect(summary(outcome)).toMatchObject({ ok: false, code: "token.decrypt_failed", retryable: false, hasToken: true });
    expect(h.store.callCount("acquireLease")).toBe(2);
    expect(h.observe()).toMatchObject({ ...nothingHappened, row: { leaseOwner: null } });
  });

  it("an access token the caller saw rejected that is no longer the stored one → by_other without the lease", async () => {
    const h = harness();
    h.seed({ accessToken: "at_newer" });
    expect(summary(await h.refresh({ staleAccessToken: "at_1" }))).toEqual({
      ok: true,
      how: "by_other",
      accessToken: "at_newer",
      version: 1,
    });
    expect(h.store.callCount("acquireLease")).toBe(0);
    expect(h.observe()).toMatchObject(nothingHappened);
  });

  it("the stale access token still stored → refreshes", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh({ staleAccessToken: "at_1", trigger: "api_expired" }))).toMatchObject({ ok: true, how: "refreshed" });
    expect(h.calcom.calls()).toHaveLength(1);
  });
});

type H = ReturnType<typeof harness>;
