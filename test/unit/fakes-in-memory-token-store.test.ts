import { TokenDecryptError } from "../../src/core/errors.js";
import { createInMemoryTokenStore } from "../fakes/in-memory-token-store.js";

// The in-memory TokenStore's test hooks. Its TokenStore semantics are pinned against Postgres by
// test/integration/store/token-store-contract.test.ts; this file covers only what the fake adds.

const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const ID = "01HZY0J7Q3V8N2M4K6P9R1S5TW";
const pair = { accessToken: "at_1", refreshToken: "rt_1", accessTokenExpiresAt: at(3600), refreshTokenExpiresAt: null };
const rotate = (expectedVersion: number, now: Date) => ({
  userUlid: ID,
  expectedVersion,
  owner: "w",
  pair: { ...pair, accessToken: `at_v${expectedVersion + 1}` },
  nextRefreshAt: at(100),
  now,
});

describe("in-memory token store: test hooks", () => {
  it("failNext fails the next N calls of one method before touching anything, then recovers", async () => {
    const store = createInMemoryTokenStore();
    await store.save({ userUlid: ID, kind: "managed", calUserId: 1, pair, nextRefreshAt: at(10), now: T0 });
    store.failNext("saveRotated", new Error("db down"), { times: 2 });
    await expect(store.saveRotated(rotate(1, at(1)))).rejects.toThrow("db down");
    await expect(store.saveRotated(rotate(1, at(2)))).rejects.toThrow("db down");
    expect(store.peek(ID)?.version).toBe(1);
    // Other methods are unaffected.
    expect((await store.getMeta(ID))?.version).toBe(1);
    expect(await store.saveRotated(rotate(1, at(3)))).toMatchObject({ ok: true, meta: { version: 2 } });
    expect(store.callCount("saveRotated")).toBe(3);
  });

  it("failNext with applied: the write commits, the caller still sees the error (lost acknowledgement)", async () => {
    const store = createInMemoryTokenStore();
    await store.save({ userUlid: ID, kind: "managed", calUserId: 1, pair, nextRefreshAt: at(10), now: T0 });
    store.failNext("saveRotated", () => new Error("connection reset"), { applied: true });
    await expect(store.saveRotated(rotate(1, at(1)))).rejects.toThrow("connection reset");
    expect(store.peek(ID)).toMatchObject({ version: 2, accessToken: "at_v2" });
  });

  it("failAll fails every call until cleared; queued failNext faults go first", async () => {
    const store = createInMemoryTokenStore();
    store.failAll("get", new Error("down"));
    store.failNext("get", new Error("first"));
    await expect(store.get(ID)).rejects.toThrow("first");
    await expect(store.get(ID)).rejects.toThrow("down");
    await expect(store.get(ID)).rejects.toThrow("down");
    store.failAll("get", null);
    await expect(store.get(ID)).resolves.toBeNull();
  });

  it("seed inserts a row directly (defaults filled in), peek and audits return copies", async () => {
    const store = createInMemoryTokenStore({ clock: () => T0 });
    const seeded = store.seed({ userUlid: ID.toLowerCase(), version: 7, status: "RECONNECT_REQUIRED", refreshToken: "rt_seeded" });
    expect(seeded).toMatchObject({
      userUlid: ID,
      version: 7,
      status: "RECONNECT_REQUIRED",
      refreshToken: "rt_seeded",
      createdAt: T0,
      leaseOwner: null,
    });
    const peeked = store.peek(ID)!;
    peeked.version = 1;
    peeked.createdAt.setTime(0);
    expect(store.peek(ID)).toMatchObject({ version: 7, createdAt: T0 });

    await store.insertAudit({ userUlid: ID, outcome: "RECONNECT_REQUIRED", trigger: "worker", errorCode: "x" });
    const audits = store.audits();
    expect(audits).toEqual([
      {
        id: 1,
        userUlid: ID,
        outcome: "RECONNECT_REQUIRED",
        trigger: "worker",
        errorCode: "x",
        version: null,
        durationMs: null,
        createdAt: T0,
      },
    ]);
    audits[0]!.createdAt.setTime(0);
    expect(store.audits(ID.toLowerCase())[0]!.createdAt).toEqual(T0);
  });

  it("undecryptable users: get and acquireLease throw TokenDecryptError until switched off", async () => {
    const store = createInMemoryTokenStore({ undecryptable: [ID.toLowerCase()] });
    store.seed({ userUlid: ID });
    await expect(store.get(ID)).rejects.toThrow(TokenDecryptError);
    await expect(store.acquireLease(ID, "w", 30)).rejects.toThrow(TokenDecryptError);
    expect(store.peek(ID)?.leaseOwner).toBeNull();
    store.setUndecryptable(ID, false);
    expect((await store.get(ID))?.userUlid).toBe(ID);
  });

  it("opts.clock is the database's clock for leases: forMs from it, live up to and including leaseUntil, lapsed just after", async () => {
    let dbNow = T0.getTime();
    const store = createInMemoryTokenStore({ clock: () => new Date(dbNow) });
    store.seed({ userUlid: ID });
    const a = await store.acquireLease(ID, "proc-a:1", 30_000);
    expect(a.kind === "acquired" && a.token.leaseUntil).toEqual(at(30));
    // The exact boundary (lease_until < now) cannot be hit against Postgres's running clock; here it can.
    dbNow = at(30).getTime();
    expect((await store.acquireLease(ID, "proc-b:1", 1_000)).kind).toBe("held");
    dbNow += 1;
    expect(await store.acquireLease(ID, "proc-b:1", 1_000)).toMatchObject({
      kind: "acquired",
      token: { leaseOwner: "proc-b:1", leaseUntil: new Date(dbNow + 1_000) },
    });
  });

  it("refuses an id that is not a 26-character ULID on write", async () => {
    const store = createInMemoryTokenStore();
    await expect(store.save({ userUlid: "abc", kind: "managed", calUserId: null, pair, nextRefreshAt: at(1), now: T0 })).rejects.toThrow(
      /26 characters/,
    );
    expect(() => store.seed({ userUlid: `${ID}X` })).toThrow(/26 characters/);
  });
});
