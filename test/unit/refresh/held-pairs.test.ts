import type { TokenMeta } from "../../../src/core/ports.js";
import { createLogger } from "../../../src/log/logger.js";
import { createHeldPairs, type OwnedHeldPair } from "../../../src/refresh/held-pairs.js";
import { createInMemoryTokenStore, type InMemoryTokenStore } from "../../fakes/in-memory-token-store.js";
import { refreshed } from "../../fakes/scripted-calcom-api.js";
import { at, harness, memoryHeldPairStore, pairOf, summary, T0, USER, USER_2 } from "./harness.js";

// Held pairs: rotated pairs the database could not take, kept here and in the shared store until written.

const dbDown = () => new Error("in-memory token store: connection terminated");

function heldFor(userUlid: string, accessToken: string, over: Partial<OwnedHeldPair> = {}): OwnedHeldPair {
  return {
    userUlid,
    expectedVersion: 1,
    owner: "proc-a",
    pair: pairOf({ accessToken, refreshToken: `rt_${accessToken}` }),
    nextRefreshAt: at(3_000_000),
    trigger: "worker",
    heldSince: T0,
    ...over,
  };
}

function setup(opts: { shared?: boolean; wrap?: (s: InMemoryTokenStore) => InMemoryTokenStore } = {}) {
  const store = createInMemoryTokenStore({ clock: () => T0 });
  store.seed({ userUlid: USER, accessToken: "at_1", leaseOwner: "proc-a", leaseUntil: at(30_000) });
  store.seed({ userUlid: USER_2, accessToken: "at_1" });
  const shared = memoryHeldPairStore();
  const written: { userUlid: string; version: number }[] = [];
  const held = createHeldPairs({
    store: opts.wrap ? opts.wrap(store) : store,
    logger: createLogger({ level: "silent" }),
    clock: () => at(1_000),
    onWritten: (h, meta: TokenMeta) => void written.push({ userUlid: h.userUlid, version: meta.version }),
    ...(opts.shared === false ? {} : { shared: shared.store }),
  });
  return { store, shared, written, held };
}

describe("held pairs", () => {
  it("holding shares the pair; the local copy remembers the shared record", async () => {
    const { held, shared } = setup();
    await held.hold(heldFor(USER, "at_2"));
    expect(held.size()).toBe(1);
    expect(held.get(USER)).toMatchObject({ owner: "proc-a", raw: "raw_1", pair: { accessToken: "at_2" } });
    expect(shared.pairs.get(USER)?.pair.accessToken).toBe("at_2");
  });

  it("a shared store that refuses the pair still leaves it held here", async () => {
    const { held, shared } = setup();
    shared.store.put = async () => {
      throw new Error("redis down");
    };
    await held.hold(heldFor(USER, "at_2"));
    expect(held.get(USER)?.pair.accessToken).toBe("at_2");
  });

  it("a flush writes with the compare-and-swap, releases the holder's lease, forgets the shared record, reports it", async () => {
    const { held, shared, store, written } = setup();
    await held.hold(heldFor(USER, "at_2"));
    expect(await held.flush()).toBe(1);
    expect(store.peek(USER)).toMatchObject({
      version: 2,
      accessToken: "at_2",
      refreshToken: "rt_at_2",
      leaseOwner: null,
      nextRefreshAt: at(3_000_000),
    });
    expect(written).toEqual([{ userUlid: USER, version: 2 }]);
    expect(held.size()).toBe(0);
    expect(shared.pairs.size).toBe(0);
    expect(shared.removed.map((r) => r.raw)).toEqual(["raw_1"]);
  });

  it("a flush drops a pair whose row moved on, without reporting it written", async () => {
    const { held, shared, store, written } = setup();
    await held.hold(heldFor(USER, "at_2"));
    store.seed({ ...store.peek(USER)!, version: 2, accessToken: "at_newer" });
    expect(await held.flush()).toBe(0);
    expect(store.peek(USER)).toMatchObject({ version: 2, accessToken: "at_newer" });
    expect(written).toEqual([]);
    expect([held.size(), shared.pairs.size]).toEqual([0, 0]);
  });

  it("a database still down keeps every pair and stops after three failures in a row; a later flush writes them all", async () => {
    const { held, store, shared } = setup();
    const users = [USER, USER_2, "01HZX3K8V2Q7W9M4T6R5Y0AB3E", "01HZX3K8V2Q7W9M4T6R5Y0AB4F"];
    for (const [i, u] of users.entries()) {
      store.seed({ userUlid: u, accessToken: `at_${i}`, refreshToken: `rt_${i}`, accessTokenExpiresAt: at(60_000), nextRefreshAt: T0 });
      await held.hold(heldFor(u, `at_new_${i}`));
    }
    store.failAll("saveRotated", dbDown);
    expect(await held.flush()).toBe(0);
    expect(store.callCount("saveRotated")).toBe(3);
    expect([held.size(), shared.pairs.size]).toEqual([4, 4]);
    store.failAll("saveRotated", null);
    expect(await held.flush()).toBe(4);
    expect([held.size(), store.peek(USER_2)?.accessToken]).toEqual([0, "at_new_1"]);
  });

  it("one pair that cannot be written does not hold back the others", async () => {
    const { held, store } = setup({ shared: false });
    await held.hold(heldFor(USER, "at_2"));
    await held.hold(heldFor(USER_2, "at_b"));
    store.failNext("saveRotated", dbDown);
    expect(await held.flush()).toBe(1);
    expect([held.size(), store.peek(USER_2)?.accessToken]).toEqual([1, "at_b"]);
  });

  it("concurrent flushes share one pass", async () => {
    const { held, store } = setup({ shared: false });
    await held.hold(heldFor(USER, "at_2"));
    const [a, b] = [held.flush(), held.flush()];
    expect(b).toBe(a);
    expect(await a).toBe(1);
    expect(store.callCount("saveRotated")).toBe(1);
  });

  it("a newer pair held while the older one is being written is kept", async () => {
    let holdDuringWrite: (() => Promise<void>) | null = null;
    const { held } = setup({
      shared: false,
      wrap: (s) => ({
        ...s,
        saveRotated: async (input) => {
          const res = await s.saveRotated(input);
          await holdDuringWrite?.();
          return res;
        },
      }),
    });
    await held.hold(heldFor(USER, "at_2"));
    holdDuringWrite = async () => {
      holdDuringWrite = null;
      await held.hold(heldFor(USER, "at_3", { expectedVersion: 2 }));
    };
    expect(await held.flush()).toBe(1);
    expect(held.get(USER)?.pair.accessToken).toBe("at_3");
  });

  it("taking over a pair from the shared store never replaces one held here; flushShared loads up to the limit", async () => {
    const setupStore = setup();
    const { held, shared } = setupStore;
    await held.hold(heldFor(USER, "at_mine"));
    held.takeOver(heldFor(USER, "at_theirs"));
    expect(held.get(USER)).toMatchObject({ owner: "proc-a", pair: { accessToken: "at_mine" } });
    shared.pairs.set(USER_2, { ...heldFor(USER_2, "at_b"), raw: "raw_b" });
    const { store } = setupStore;
    expect(await held.flushShared(1)).toBe(1); // lists only USER's record: writes the pair held here
    expect([store.peek(USER)?.accessToken, store.peek(USER_2)?.accessToken]).toEqual(["at_mine", "at_1"]);
    expect(await held.flushShared(10)).toBe(1);
    expect([store.peek(USER_2)?.accessToken, held.size(), shared.pairs.size]).toEqual(["at_b", 0, 0]);
  });

  it("close makes a last flush; without a shared store flushShared does nothing", async () => {
    const { held, store } = setup({ shared: false });
    await held.hold(heldFor(USER_2, "at_b"));
    expect(await held.flushShared()).toBe(0);
    await held.close();
    expect([held.size(), store.peek(USER_2)?.accessToken]).toEqual([0, "at_b"]);
  });
});

describe("held pairs through the refresher", () => {
  it("a pair left in the shared store by a dead process is written before any refresh: by_other, no Cal.com call, RECOVERED", async () => {
    const shared = memoryHeldPairStore([heldFor(USER, "at_orphan")]);
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_orphan", version: 2 });
    expect(h.observe()).toMatchObject({
      calls: [],
      audits: [{ outcome: "RECOVERED", version: 2 }],
      alerts: ["recovered"],
      row: { refreshToken: "rt_at_orphan", leaseOwner: null },
    });
    expect(shared.pairs.size).toBe(0);
  });

  it("a shared store that fails its lookup is skipped: the refresh goes ahead", async () => {
    const shared = memoryHeldPairStore();
    shared.store.get = async () => {
      throw new Error("redis down");
    };
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed", version: 2 });
  });

  it("a pair held because the database refused it is also put in the shared store", async () => {
    const shared = memoryHeldPairStore();
    const h = harness({ heldPairStore: shared.store });
    h.seed();
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshManaged", refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }));
    await h.refresh();
    expect(shared.pairs.get(USER)).toMatchObject({ expectedVersion: 1, trigger: "worker", heldSince: T0, pair: { accessToken: "at_2" } });
  });
});
