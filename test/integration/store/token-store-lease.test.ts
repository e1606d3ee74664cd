import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { TokenStore } from "../../../src/core/ports.js";
import type { TokenPair } from "../../../src/core/types.js";
import { createPrisma, type PrismaClient } from "../../../src/store/prisma.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";

// The coordination half of the store (invariants 1 and 2, docs/architecture.md#invariants): the row lease, the
// version compare-and-swap, damped failure counting and RECONNECT_REQUIRED, on real Postgres.

const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const WINDOW_MS = 5 * 60_000;
const pair = (over: Partial<TokenPair> = {}): TokenPair => ({
  accessToken: `at_${randomBytes(16).toString("hex")}`,
  refreshToken: `rt_${randomBytes(16).toString("hex")}`,
  accessTokenExpiresAt: at(3600),
  refreshTokenExpiresAt: at(365 * 86400),
  ...over,
});

let prisma: PrismaClient;
let store: TokenStore;

beforeAll(() => {
  // A pool as wide as the concurrency test, so the 20 UPDATEs really race in Postgres.
  prisma = createPrisma(process.env.TEST_DATABASE_URL!, { max: 20 });
  store = createTokenStore({ prisma, cipher: createTokenCipher([{ id: "t1", key: randomBytes(32) }]) });
});
afterAll(async () => {
  await prisma.$disconnect();
});

async function seeded(): Promise<{ id: string; pair: TokenPair }> {
  const id = ulid();
  const p = pair();
  await store.save({ userUlid: id, kind: "managed", calUserId: 7, pair: p, nextRefreshAt: at(3000), now: T0 });
  return { id, pair: p };
}

async function rowText(userUlid: string): Promise<string> {
  const rows = await prisma.$queryRaw<{ j: string }[]>`SELECT row_to_json(t)::text AS j FROM cal_token t WHERE user_ulid = ${userUlid}`;
  return rows[0]!.j;
}

const failure = (id: string, now: Date, over: Partial<Parameters<TokenStore["recordFailure"]>[0]> = {}) => ({
  userUlid: id,
  expectedVersion: 1,
  owner: "worker-a",
  code: "calcom.transient",
  rotationUncertain: false,
  nextRefreshAt: new Date(now.getTime() + 30_000),
  failureWindowMs: WINDOW_MS,
  now,
  ...over,
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("TokenStore: lease", () => {
  it("A acquires (and re-reads the row), B sees it held, the holder shortens its own lease, the lapsed lease goes to B", async () => {
    const { id, pair: p } = await seeded();
    const a = await store.acquireLease(id, "worker-a", 30_000);
    expect(a.kind).toBe("acquired");
    if (a.kind !== "acquired") return;
    expect(a.token).toMatchObject({ accessToken: p.accessToken, refreshToken: p.refreshToken, leaseOwner: "worker-a", version: 1 });

    const b = await store.acquireLease(id, "worker-b", 40_000);
    expect(b).toEqual({ kind: "held", meta: expect.objectContaining({ leaseOwner: "worker-a", leaseUntil: a.token.leaseUntil }) });
    if (b.kind === "held") expect(b.meta).not.toHaveProperty("accessToken");

    // The holder may move its own lease either way: here down to 1 s, by Postgres's clock (long enough
    // that the next statement still finds it held on a loaded machine).
    expect((await store.acquireLease(id, "worker-a", 1_000)).kind).toBe("acquired");
    expect((await store.acquireLease(id, "worker-b", 30_000)).kind).toBe("held");
    await sleep(1_100);
    const late = await store.acquireLease(id, "worker-b", 30_000);
    expect(late.kind === "acquired" && late.token.leaseOwner).toBe("worker-b");
  });

  it("lease_until is Postgres's clock_timestamp() + forMs, measured in the database", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-a", 30_000);
    const [r] = await prisma.$queryRaw<{ leftMs: number; live: boolean }[]>`
      SELECT (extract(epoch FROM lease_until - clock_timestamp()) * 1000)::float8 AS "leftMs",
             lease_until >= clock_timestamp() AS live
      FROM cal_token WHERE user_ulid = ${id}`;
    expect(r!.live).toBe(true);
    expect(r!.leftMs).toBeLessThanOrEqual(30_000);
    expect(r!.leftMs).toBeGreaterThan(29_000);
  });

  it.each([
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a negative length", -1],
  ])("a lease length of %s is refused; the row is unchanged", async (_name, forMs) => {
    const { id } = await seeded();
    const before = await rowText(id);
    await expect(store.acquireLease(id, "worker-a", forMs)).rejects.toThrow();
    expect(await rowText(id)).toBe(before);
  });

  it("reports a missing row", async () => {
    expect(await store.acquireLease(ulid(), "worker-a", 30_000)).toEqual({ kind: "missing" });
  });

  it("release by a non-owner does nothing; release by the owner frees it", async () => {
    const { id } = await seeded();
    const a = await store.acquireLease(id, "worker-a", 30_000);
    const until = a.kind === "acquired" ? a.token.leaseUntil : undefined;
    await store.releaseLease(id, "worker-b");
    expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-a", leaseUntil: until });
    await store.releaseLease(id, "worker-a");
    expect(await store.getMeta(id)).toMatchObject({ leaseOwner: null, leaseUntil: null });
    expect((await store.acquireLease(id, "worker-b", 30_000)).kind).toBe("acquired");
  });

  it("20 lease tokens racing for the same row (ten of them one process's attempts): exactly one acquires", async () => {
    for (let round = 0; round < 3; round++) {
      const { id } = await seeded();
      const owners = Array.from({ length: 20 }, (_, i) => (i < 10 ? `proc-${round}:${i}` : `worker-${round}-${i}`));
      const results = await Promise.all(owners.map((o) => store.acquireLease(id, o, 30_000)));
      const winners = results.flatMap((r, i) => (r.kind === "acquired" ? [owners[i]] : []));
      expect(winners).toHaveLength(1);
      // Every loser saw the winner's lease, never a half-written one.
      for (const r of results) if (r.kind === "held") expect(r.meta.leaseOwner).toBe(winners[0]);
      expect((await store.getMeta(id))?.leaseOwner).toBe(winners[0]);
    }
  });
});

describe("TokenStore: saveRotated (compare-and-swap)", () => {
  it("a stale version changes nothing", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-a", 30_000);
    const before = await rowText(id);
    const res = await store.saveRotated({
      userUlid: id,
      expectedVersion: 2,
      owner: "worker-a",
      pair: pair(),
      nextRefreshAt: at(5000),
      now: at(5),
    });
    expect(res).toEqual({ ok: false });
    expect(await rowText(id)).toBe(before);
  });

  it("the right version stores the pair as issued, bumps the version, clears our lease and the failures", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-a", 30_000);
    expect(await store.recordFailure(failure(id, at(1), { rotationUncertain: true, owner: "someone-else" }))).toBe(true);
    const next = pair({ accessTokenExpiresAt: at(7200), refreshTokenExpiresAt: null });
    const res = await store.saveRotated({
      userUlid: id,
      expectedVersion: 1,
      owner: "worker-a",
      pair: next,
      nextRefreshAt: at(6600),
      now: at(5),
    });
    expect(res).toEqual({
      ok: true,
      meta: expect.objectContaining({
        version: 2,
        status: "ACTIVE",
        leaseOwner: null,
        leaseUntil: null,
        rotationUncertain: false,
        failureCount: 0,
        firstFailureAt: null,
        lastFailureAt: null,
        lastFailureCode: null,
        accessTokenExpiresAt: at(7200),
        refreshTokenExpiresAt: null,
        lastRefreshedAt: at(5),
        nextRefreshAt: at(6600),
        updatedAt: at(5),
      }),
    });
    const record = (await store.get(id))!;
    expect([record.accessToken, record.refreshToken]).toEqual([next.accessToken, next.refreshToken]);
    // The old version can never be written again.
    expect(
      await store.saveRotated({ userUlid: id, expectedVersion: 1, owner: "worker-a", pair: pair(), nextRefreshAt: at(1), now: at(6) }),
    ).toEqual({ ok: false });
  });

  it("leaves someone else's lease in place", async () => {
    const { id } = await seeded();
    const lease = await store.acquireLease(id, "worker-b", 30_000);
    const until = lease.kind === "acquired" ? lease.token.leaseUntil : undefined;
    const res = await store.saveRotated({
      userUlid: id,
      expectedVersion: 1,
      owner: "worker-a",
      pair: pair(),
      nextRefreshAt: at(5000),
      now: at(5),
    });
    expect(until).toBeInstanceOf(Date);
    expect(res.ok && res.meta).toMatchObject({ version: 2, leaseOwner: "worker-b", leaseUntil: until });
  });
});

describe("TokenStore: recordFailure", () => {
  it("counts a burst once, counts again after a quiet window, and releases our lease", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-a", 30_000);
    expect(await store.recordFailure(failure(id, at(10), { rotationUncertain: true }))).toBe(true);
    expect(await store.getMeta(id)).toMatchObject({
      failureCount: 1,
      firstFailureAt: at(10),
      lastFailureAt: at(10),
      lastFailureCode: "calcom.transient",
      rotationUncertain: true,
      nextRefreshAt: at(40),
      leaseOwner: null,
      leaseUntil: null,
      version: 1,
      status: "ACTIVE",
    });

    // Inside the window: not counted again; the uncertainty flag is sticky (OR), not overwritten.
    expect(await store.recordFailure(failure(id, at(70), { code: "calcom.timeout" }))).toBe(true);
    expect(await store.getMeta(id)).toMatchObject({
      failureCount: 1,
      firstFailureAt: at(10),
      lastFailureAt: at(70),
      lastFailureCode: "calcom.timeout",
      rotationUncertain: true,
    });

    // More than a window after the previous failure: counted.
    expect(await store.recordFailure(failure(id, at(70 + WINDOW_MS / 1000 + 1)))).toBe(true);
    expect(await store.getMeta(id)).toMatchObject({ failureCount: 2, firstFailureAt: at(10) });
  });

  it("a stale version touches nothing; someone else's lease is kept", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-b", 30_000);
    const before = await rowText(id);
    expect(await store.recordFailure(failure(id, at(10), { expectedVersion: 0 }))).toBe(false);
    expect(await rowText(id)).toBe(before);
    expect(await store.recordFailure(failure(id, at(10)))).toBe(true);
    expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-b", failureCount: 1 });
  });

  it("returns false for a missing row", async () => {
    expect(await store.recordFailure(failure(ulid(), T0))).toBe(false);
  });
});

describe("TokenStore: markReconnectRequired", () => {
  it("CAS on version; sets status and failure fields, releases our lease, keeps the version", async () => {
    const { id } = await seeded();
    await store.acquireLease(id, "worker-a", 30_000);
    const mark = { userUlid: id, owner: "worker-a", code: "calcom.refresh_rejected", now: at(12) };
    const before = await rowText(id);
    expect(await store.markReconnectRequired({ ...mark, expectedVersion: 2 })).toBe(false);
    expect(await rowText(id)).toBe(before);

    expect(await store.markReconnectRequired({ ...mark, expectedVersion: 1 })).toBe(true);
    expect(await store.getMeta(id)).toMatchObject({
      status: "RECONNECT_REQUIRED",
      lastFailureCode: "calcom.refresh_rejected",
      lastFailureAt: at(12),
      leaseOwner: null,
      leaseUntil: null,
      version: 1,
    });
    // A new connect flow brings the user back.
    const meta = await store.save({ userUlid: id, kind: "managed", calUserId: 7, pair: pair(), nextRefreshAt: at(3000), now: at(20) });
    expect(meta).toMatchObject({ status: "ACTIVE", version: 2, lastFailureCode: null });
  });
});
