import { refreshed } from "../../fakes/scripted-calcom-api.js";
import { at, harness, memoryHeldPairStore, summary, USER } from "./harness.js";

// Writing a rotated pair: compare-and-swap, retries while the lease covers us, then a held pair.

const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };
const dbDown = () => new Error("in-memory token store: connection terminated");

describe("persisting a rotated pair", () => {
  it("loses the compare-and-swap to a reconnect during the call → by_other, the stored pair is never overwritten", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", async () => {
      await h.other.reconnect();
      return refreshed(newPair);
    });
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_reconnected", version: 2 });
    expect(h.observe()).toMatchObject({
      row: { version: 2, accessToken: "at_reconnected", refreshToken: "rt_reconnected", leaseOwner: null },
      audits: [],
      alerts: [],
      events: [],
    });
    expect(h.refresher.heldPairs.size()).toBe(0);
  });

  it("retries a failed write with growing delays and succeeds", async () => {
    const h = harness();
    h.seed();
    h.store.failNext("saveRotated", dbDown(), { times: 2 });
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.sleeps).toEqual([250, 500]);
    expect(h.store.callCount("saveRotated")).toBe(3);
    expect(h.observe()).toMatchObject({
      row: { version: 2, accessToken: "at_2", leaseOwner: null },
      audits: [{ outcome: "REFRESHED", version: 2 }],
      calls: [{ method: "refreshManaged", arg: "rt_1" }],
      events: [{ outcome: "REFRESHED" }],
    });
    expect(h.refresher.heldPairs.size()).toBe(0);
  });

  it("a write that committed but lost its answer is not applied twice: the retry finds our own pair stored, which this attempt refreshed", async () => {
    const h = harness();
    h.seed();
    h.store.failNext("saveRotated", dbDown(), { applied: true });
    h.calcom.script("refreshManaged", refreshed(newPair));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.store.callCount("saveRotated")).toBe(2);
    expect(h.observe()).toMatchObject({
      row: { version: 2, accessToken: "at_2", leaseOwner: null },
      audits: [{ outcome: "REFRESHED", version: 2 }],
    });
    expect(h.refresher.heldPairs.size()).toBe(0);
  });

  // The write is retried while the attempt's own lease estimate (taken before the call with
  // callLeaseMs) has MORE than 1 s left (it was 5 s, counted from the base lease); checks run at
  // 0, 250, 750, 1 750, 3 750 and 7 750 ms after the answer.
  it.each([
    ["the attempts run out (6 with a 30 s call lease)", { persistAttempts: 6, callLeaseMs: 30_000 }, 0, [250, 500, 1_000, 2_000, 4_000]],
    [
      "exactly 1 s of the lease is left (8.75 s call lease)",
      { persistAttempts: 100, callLeaseMs: 8_750 },
      0,
      [250, 500, 1_000, 2_000, 4_000],
    ],
    [
      "just over 1 s is left: one more retry (8.751 s call lease)",
      { persistAttempts: 100, callLeaseMs: 8_751 },
      0,
      [250, 500, 1_000, 2_000, 4_000, 5_000],
    ],
    ["a slow answer already used most of the lease", { persistAttempts: 100, callLeaseMs: 8_000 }, 5_000, [250, 500, 1_000, 2_000]],
    ["a slow answer left only 1 s: held at the first failure", { persistAttempts: 100, callLeaseMs: 8_000 }, 7_000, []],
  ])("holds the pair when %s: ok with the new access token, row untouched", async (_name, policy, callMs, sleeps) => {
    const shared = memoryHeldPairStore();
    const h = harness({ policy: { leaseMs: 2_000, ...policy }, heldPairStore: shared.store });
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", () => {
      h.advance(callMs);
      return refreshed(newPair);
    });
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 1 });
    expect(outcome.ok && outcome.token.refreshToken).toBe("rt_2");
    expect(h.sleeps).toEqual(sleeps);
    expect(h.store.callCount("saveRotated")).toBe(sleeps.length + 1);
    expect(h.refresher.heldPairs.size()).toBe(1);
    expect(h.refresher.heldPair(USER)?.accessToken).toBe("at_2");
    // Held in the shared store too, once (at the first failed write, not again per retry).
    expect([...shared.pairs.values()].map((p) => p.pair.refreshToken)).toEqual(["rt_2"]);
    expect(shared.removed).toEqual([]);
    // The lease stays ours until it lapses: nobody refreshes over the held pair with the dead token meanwhile.
    expect(h.observe()).toMatchObject({
      row: { version: 1, accessToken: "at_1", refreshToken: "rt_1", leaseOwner: "us" },
      audits: [],
      alerts: [],
      events: [],
    });
  });

  it("measures the lease left for retries from the extension before the call, not from when the refresh started", async () => {
    const h = harness({ policy: { persistAttempts: 100, leaseMs: 2_000, callLeaseMs: 8_000 } });
    h.seed({ leaseOwner: "other", leaseUntil: at(10_000) }); // we wait ~10 s for it to lapse
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh();
    expect(h.sleeps.filter((ms) => ms >= 250)).toEqual([250, 500, 1_000, 2_000, 4_000]); // as with a fresh 8 s call lease
    expect(h.store.callCount("saveRotated")).toBe(6);
    expect(h.refresher.heldPairs.size()).toBe(1);
  });

  it("holds the pair at the FIRST failed write, here and in the shared store, and forgets it when a retry succeeds", async () => {
    const shared = memoryHeldPairStore();
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    h.store.failNext("saveRotated", dbDown(), { times: 2 });
    h.calcom.script("refreshManaged", refreshed(newPair));
    const heldDuringRetries: (string | undefined)[][] = [];
    const look = () => void heldDuringRetries.push([h.refresher.heldPair(USER)?.refreshToken, shared.pairs.get(USER)?.pair.refreshToken]);
    h.duringSleep.push(look, look);
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    // A kill -9 during either retry would have left the pair in the shared store.
    expect(heldDuringRetries).toEqual([
      ["rt_2", "rt_2"],
      ["rt_2", "rt_2"],
    ]);
    expect(shared.pairs.size).toBe(0);
    expect(shared.removed.map((r) => r.pair.refreshToken)).toEqual(["rt_2"]);
    expect(h.refresher.heldPairs.size()).toBe(0);
    expect(h.observe()).toMatchObject({ row: { version: 2, refreshToken: "rt_2", leaseOwner: null }, audits: [{ outcome: "REFRESHED" }] });
  });

  it("a refresher that is closing does not retry the write: the pair stays held, here and in the shared store", async () => {
    const shared = memoryHeldPairStore();
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    let closed: Promise<void> | undefined;
    h.calcom.script("refreshManaged", () => {
      closed = h.refresher.close(); // SIGTERM while Cal.com answers
      return refreshed(newPair);
    });
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 1 });
    await closed;
    expect(h.sleeps).toEqual([]);
    expect(h.refresher.heldPair(USER)?.refreshToken).toBe("rt_2");
    expect(shared.pairs.get(USER)?.pair.refreshToken).toBe("rt_2");
    expect(h.row()).toMatchObject({ version: 1, refreshToken: "rt_1" });
  });

  it("a refresher closed between two retries stops retrying at once and leaves the pair held", async () => {
    const shared = memoryHeldPairStore();
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    let closed: Promise<void> | undefined;
    h.duringSleep.push(() => {
      closed = h.refresher.close();
    });
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
    const writesBeforeClose = h.store.callCount("saveRotated");
    await closed;
    expect(h.sleeps).toEqual([250]);
    // The first write and the one retry already under way; none after the close (the close's own flush aside).
    expect(writesBeforeClose).toBe(2);
    expect(h.refresher.heldPair(USER)?.refreshToken).toBe("rt_2");
    expect(shared.pairs.get(USER)?.pair.refreshToken).toBe("rt_2");
  });

  it("a later flush writes the held pair: version + 1, lease released, RECOVERED audit, event and alert", async () => {
    const h = harness();
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh();
    h.store.failAll("saveRotated", null);
    h.advance(60_000);
    expect(await h.refresher.heldPairs.flush()).toBe(1);
    expect(h.refresher.heldPairs.size()).toBe(0);
    expect(h.observe()).toMatchObject({
      row: { version: 2, accessToken: "at_2", refreshToken: "rt_2", leaseOwner: null },
      audits: [{ outcome: "RECOVERED", errorCode: null, version: 2 }],
      alerts: ["recovered"],
      events: [{ outcome: "RECOVERED", errorCode: null }],
    });
    expect(h.events[0]?.durationMs).toBeGreaterThanOrEqual(60_000);
  });

  it("a flush drops a held pair when the row moved on meanwhile (the newer pair stands)", async () => {
    const h = harness();
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh();
    h.store.failAll("saveRotated", null);
    await h.other.reconnect();
    expect(await h.refresher.heldPairs.flush()).toBe(0);
    expect(h.refresher.heldPairs.size()).toBe(0);
    expect(h.observe()).toMatchObject({ row: { version: 2, accessToken: "at_reconnected" }, audits: [], alerts: [], events: [] });
  });

  it("a refresh while a pair is held writes it first and never calls Cal.com with the dead token", async () => {
    const h = harness();
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh();
    h.store.failAll("saveRotated", null);
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_2", version: 2 });
    expect(h.calcom.calls()).toHaveLength(1);
    expect(h.observe()).toMatchObject({ row: { version: 2, accessToken: "at_2", leaseOwner: null }, audits: [{ outcome: "RECOVERED" }] });
  });

  it("a refresh while the database still refuses the held pair answers with the held pair, no Cal.com call", async () => {
    const h = harness();
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh();
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: true, how: "by_other", accessToken: "at_2", version: 1 });
    expect(outcome.ok && outcome.token.refreshToken).toBe("rt_2");
    expect(h.calcom.calls()).toHaveLength(1);
    expect(h.refresher.heldPairs.size()).toBe(1);
  });
});
