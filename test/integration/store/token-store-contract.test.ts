import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { ulid } from "ulid";
import { TokenDecryptError } from "../../../src/core/errors.js";
import type { AuditOutcome, SaveTokensInput, TokenRecord, TokenStore } from "../../../src/core/ports.js";
import type { TokenPair } from "../../../src/core/types.js";
import { createPrisma, type PrismaClient } from "../../../src/store/prisma.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { createInMemoryTokenStore } from "../../fakes/in-memory-token-store.js";

// The TokenStore contract: ONE table of behaviours run against the Prisma/Postgres store (the run's
// database, TEST_DATABASE_URL) and the in-memory fake the unit tests use (test/fakes). A behaviour
// that holds for one and not the other fails here, so the fake cannot drift from the real thing.
// Data time always comes from the caller: every `now` below is explicit (and in 2030). Leases alone
// use the database's clock (Postgres clock_timestamp(), the fake's `opts.clock`): their tests read
// that clock through a back door and let it move on (a real wait of a few tens of ms for Postgres).

const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const WINDOW_MS = 5 * 60_000;
const secret = (prefix: string): string => `${prefix}_${randomBytes(12).toString("hex")}`;
const pair = (over: Partial<TokenPair> = {}): TokenPair => ({
  accessToken: secret("at"),
  refreshToken: secret("rt"),
  accessTokenExpiresAt: at(3600),
  refreshTokenExpiresAt: at(365 * 86400),
  ...over,
});
const saveInput = (userUlid: string, over: Partial<SaveTokensInput> = {}): SaveTokensInput => ({
  userUlid,
  kind: "managed",
  calUserId: 42,
  pair: pair(),
  nextRefreshAt: at(3000),
  now: T0,
  ...over,
});

interface AuditView {
  outcome: AuditOutcome;
  trigger: string;
  errorCode: string | null;
  version: number | null;
  durationMs: number | null;
  createdAt: Date;
}

/** A store under test plus the few back doors a behaviour needs that the port cannot express. */
interface Subject {
  store: TokenStore;
  /** Make the user's stored ciphertext fail to authenticate. */
  corrupt(userUlid: string): Promise<void>;
  /** Set the lease columns directly (e.g. a half-cleared lease, which no port method produces). */
  setLease(userUlid: string, owner: string | null, until: Date | null): Promise<void>;
  /** The user's audit rows, oldest first. */
  audits(userUlid: string): Promise<AuditView[]>;
  /** The database's clock. */
  dbNow(): Promise<Date>;
  /** Lets the database's clock move on by `ms` (a real wait for Postgres, a clock step for the fake). */
  elapse(ms: number): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function postgresSubject(): Subject {
  const prisma: PrismaClient = createPrisma(process.env.TEST_DATABASE_URL!, { max: 4 });
  const store = createTokenStore({ prisma, cipher: createTokenCipher([{ id: "t1", key: randomBytes(32) }]) });
  return {
    store,
    async corrupt(userUlid) {
      await prisma.$executeRaw`UPDATE cal_token SET access_token_enc = 'v1.t1.garbage' WHERE user_ulid = ${userUlid}`;
    },
    async setLease(userUlid, owner, until) {
      await prisma.$executeRaw`UPDATE cal_token SET lease_owner = ${owner}, lease_until = ${until}::timestamptz WHERE user_ulid = ${userUlid}`;
    },
    async audits(userUlid) {
      const rows = await prisma.calTokenAudit.findMany({ where: { userUlid }, orderBy: { id: "asc" } });
      return rows.map(({ outcome, trigger, errorCode, version, durationMs, createdAt }) => ({
        outcome,
        trigger,
        errorCode,
        version,
        durationMs,
        createdAt,
      }));
    },
    async dbNow() {
      const rows = await prisma.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS now`;
      return rows[0]!.now;
    },
    elapse: sleep,
    close: () => prisma.$disconnect(),
  };
}

function inMemorySubject(): Subject {
  // The fake's database clock: wall time read once, then driven by performance.now() plus the steps
  // `elapse` takes, so faking this process's Date (below) does not move it.
  const base = Date.now() - performance.now();
  let stepped = 0;
  const clock = () => new Date(base + performance.now() + stepped);
  const store = createInMemoryTokenStore({ clock });
  return {
    store,
    async corrupt(userUlid) {
      store.setUndecryptable(userUlid);
    },
    async setLease(userUlid, owner, until) {
      store.seed({ ...store.peek(userUlid)!, leaseOwner: owner, leaseUntil: until });
    },
    async audits(userUlid) {
      return store.audits(userUlid).map(({ outcome, trigger, errorCode, version, durationMs, createdAt }) => ({
        outcome,
        trigger,
        errorCode,
        version,
        durationMs,
        createdAt,
      }));
    },
    dbNow: async () => clock(),
    elapse: async (ms) => {
      stepped += ms;
    },
    close: async () => undefined,
  };
}

const SUBJECTS: [string, () => Subject][] = [
  ["postgres", postgresSubject],
  ["in-memory", inMemorySubject],
];

describe.each(SUBJECTS)("TokenStore contract: %s", (_name, makeSubject) => {
  let s: Subject;
  let store: TokenStore;
  beforeAll(() => {
    s = makeSubject();
    store = s.store;
  });
  afterAll(() => s.close());

  async function seeded(over: Partial<SaveTokensInput> = {}): Promise<{ id: string; input: SaveTokensInput }> {
    const id = ulid();
    const input = saveInput(id, over);
    await store.save(input);
    return { id, input };
  }
  /** Takes the lease; its lease_until as the store reports it. */
  async function leased(id: string, owner: string, forMs = 30_000): Promise<Date> {
    const res = await store.acquireLease(id, owner, forMs);
    if (res.kind !== "acquired") throw new Error(`lease for ${owner}: ${res.kind}`);
    return res.token.leaseUntil!;
  }
  /** Asserts lease_until is forMs after the database's clock at the statement (read just before and after). */
  async function expectLeaseFor(forMs: number, take: () => Promise<Date | null | undefined>): Promise<void> {
    const before = (await s.dbNow()).getTime();
    const until = (await take())?.getTime() ?? Number.NaN;
    const after = (await s.dbNow()).getTime();
    expect(until).toBeGreaterThanOrEqual(before + forMs);
    expect(until).toBeLessThanOrEqual(after + forMs);
  }
  /** Moves the user's lease into the past by the database's clock (a holder that died a while ago). */
  async function lapse(id: string, owner: string): Promise<void> {
    await s.setLease(id, owner, new Date((await s.dbNow()).getTime() - 1_000));
  }
  /** The whole row as the port shows it (tokens included): for "nothing changed" checks. */
  const row = (id: string): Promise<TokenRecord | null> => store.get(id);
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
  const rotated = (id: string, over: Partial<Parameters<TokenStore["saveRotated"]>[0]> = {}) => ({
    userUlid: id,
    expectedVersion: 1,
    owner: "worker-a",
    pair: pair(),
    nextRefreshAt: at(5000),
    now: at(5),
    ...over,
  });

  describe("save", () => {
    it("inserts version 1, ACTIVE, everything cleared; get/getMeta read it back", async () => {
      const id = ulid();
      const input = saveInput(id);
      const meta = await store.save(input);
      expect(meta).toEqual({
        userUlid: id,
        kind: "managed",
        calUserId: 42,
        accessTokenExpiresAt: input.pair.accessTokenExpiresAt,
        refreshTokenExpiresAt: input.pair.refreshTokenExpiresAt,
        status: "ACTIVE",
        version: 1,
        leaseOwner: null,
        leaseUntil: null,
        rotationUncertain: false,
        refreshTokenRejected: false,
        failureCount: 0,
        firstFailureAt: null,
        lastFailureAt: null,
        lastFailureCode: null,
        lastRefreshedAt: T0,
        nextRefreshAt: input.nextRefreshAt,
        lastUsedAt: null,
        createdAt: T0,
        updatedAt: T0,
      });
      expect(meta).not.toHaveProperty("accessToken");
      expect(await store.get(id)).toEqual({ ...meta, accessToken: input.pair.accessToken, refreshToken: input.pair.refreshToken });
      expect(await store.getMeta(id)).toEqual(meta);
    });

    it("returns null for a user without a row", async () => {
      expect(await store.get(ulid())).toBeNull();
      expect(await store.getMeta(ulid())).toBeNull();
    });

    it("stores oauth2, a null cal user id and a null refresh expiry as given", async () => {
      const { id } = await seeded({ kind: "oauth2", calUserId: null, pair: pair({ refreshTokenExpiresAt: null }) });
      expect(await store.getMeta(id)).toMatchObject({ kind: "oauth2", calUserId: null, refreshTokenExpiresAt: null });
    });

    it("upsert replaces the pair, bumps the version, resets status/failures/lease; keeps createdAt and lastUsedAt", async () => {
      const { id } = await seeded();
      await leased(id, "worker-a", 60_000);
      await store.recordFailure(failure(id, at(2), { rotationUncertain: true, owner: "other" }));
      await store.markReconnectRequired({ userUlid: id, expectedVersion: 1, owner: "other", code: "calcom.refresh_rejected", now: at(3) });
      await store.touchLastUsed(id, at(4));

      const second = saveInput(id, {
        kind: "oauth2",
        calUserId: 7,
        now: at(100),
        nextRefreshAt: at(4000),
        pair: pair({ accessTokenExpiresAt: at(4600), refreshTokenExpiresAt: null }),
      });
      const meta = await store.save(second);
      expect(meta).toEqual({
        userUlid: id,
        kind: "oauth2",
        calUserId: 7,
        accessTokenExpiresAt: at(4600),
        refreshTokenExpiresAt: null,
        status: "ACTIVE",
        version: 2,
        leaseOwner: null,
        leaseUntil: null,
        rotationUncertain: false,
        refreshTokenRejected: false,
        failureCount: 0,
        firstFailureAt: null,
        lastFailureAt: null,
        lastFailureCode: null,
        lastRefreshedAt: at(100),
        nextRefreshAt: at(4000),
        lastUsedAt: at(4),
        createdAt: T0,
        updatedAt: at(100),
      });
      expect(await row(id)).toMatchObject({ accessToken: second.pair.accessToken, refreshToken: second.pair.refreshToken });
      expect((await store.save(saveInput(id)))!.version).toBe(3);
    });

    it("ifAbsent: inserts a new row, returns null and leaves an existing row alone", async () => {
      const id = ulid();
      expect(await store.save({ ...saveInput(id), ifAbsent: true })).toMatchObject({ userUlid: id, version: 1 });
      await leased(id, "worker-a");
      const before = await row(id);
      expect(await store.save({ ...saveInput(id, { now: at(10) }), ifAbsent: true })).toBeNull();
      expect(await row(id)).toEqual(before);
    });

    it("returns copies: mutating a result never changes the store", async () => {
      const { id, input } = await seeded();
      const meta = (await store.getMeta(id))!;
      meta.version = 99;
      meta.nextRefreshAt.setTime(0);
      const record = (await store.get(id))!;
      record.refreshToken = "mutated";
      record.accessTokenExpiresAt.setTime(0);
      const lease = await store.acquireLease(id, "worker-a", 30_000);
      const leaseUntil = lease.kind === "acquired" ? new Date(lease.token.leaseUntil!.getTime()) : null;
      if (lease.kind === "acquired") {
        lease.token.leaseUntil!.setTime(0);
        lease.token.leaseOwner = "mutated";
      }
      expect(await row(id)).toMatchObject({
        version: 1,
        nextRefreshAt: input.nextRefreshAt,
        refreshToken: input.pair.refreshToken,
        accessTokenExpiresAt: input.pair.accessTokenExpiresAt,
        leaseOwner: "worker-a",
        leaseUntil,
      });
      expect(leaseUntil).not.toBeNull();
    });
  });

  describe("lease", () => {
    it("acquires a free row with the tokens for forMs by the database's clock, without touching version or updatedAt", async () => {
      const { id, input } = await seeded();
      let res: Awaited<ReturnType<TokenStore["acquireLease"]>> | undefined;
      await expectLeaseFor(30_000, async () => {
        res = await store.acquireLease(id, "worker-a", 30_000);
        return res.kind === "acquired" ? res.token.leaseUntil : null;
      });
      expect(res).toEqual({
        kind: "acquired",
        token: expect.objectContaining({
          accessToken: input.pair.accessToken,
          refreshToken: input.pair.refreshToken,
          leaseOwner: "worker-a",
          version: 1,
          updatedAt: T0,
        }),
      });
      expect(await store.getMeta(id)).toMatchObject({
        leaseOwner: "worker-a",
        leaseUntil: (res as { token: TokenRecord }).token.leaseUntil,
      });
    });

    it("a live lease is held for another owner (meta only), and asking does not move it", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-a");
      const held = await store.acquireLease(id, "worker-b", 60_000);
      expect(held).toEqual({ kind: "held", meta: expect.objectContaining({ leaseOwner: "worker-a", leaseUntil: until }) });
      if (held.kind === "held") expect(held.meta).not.toHaveProperty("refreshToken");
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-a", leaseUntil: until });
    });

    it("a lapsed lease goes to the next owner, for the next owner's forMs", async () => {
      const { id } = await seeded();
      await leased(id, "worker-a");
      await lapse(id, "worker-a");
      await expectLeaseFor(90_000, () => leased(id, "worker-b", 90_000));
      expect((await store.getMeta(id))?.leaseOwner).toBe("worker-b");
    });

    it("length and lapse follow the database's clock: a short lease lapses after forMs, whatever `now` callers pass elsewhere", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-a", 300);
      // Callers whose clocks are years ahead (or behind) write with their `now`: the lease does not move.
      await store.touchLastUsed(id, at(10 * 365 * 86_400));
      await store.recordFailure(failure(id, at(10 * 365 * 86_400), { owner: "worker-b" }));
      await store.recordFailure(failure(id, at(-10 * 365 * 86_400), { owner: "worker-b" }));
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-a", leaseUntil: until });
      expect((await store.acquireLease(id, "worker-b", 30_000)).kind).toBe("held");
      await s.elapse(350);
      expect((await store.acquireLease(id, "worker-b", 30_000)).kind).toBe("acquired");
    });

    describe("with this process's clock far off", () => {
      afterEach(() => {
        jest.useRealTimers();
      });
      // Only Date is faked: timers, and the database's clock, run on.
      const skew = (ms: number) =>
        jest.useFakeTimers({
          now: Date.now() + ms,
          doNotFake: [
            "setTimeout",
            "clearTimeout",
            "setImmediate",
            "clearImmediate",
            "setInterval",
            "clearInterval",
            "nextTick",
            "queueMicrotask",
            "hrtime",
            "performance",
          ],
        });

      it.each([
        ["an hour ahead", 3_600_000],
        ["an hour behind", -3_600_000],
        ["ten years ahead", 10 * 365 * 86_400_000],
      ])("%s: the lease is still forMs from the database's now, held for others until then, then lapses", async (_name, offsetMs) => {
        const { id } = await seeded();
        skew(offsetMs);
        const before = (await s.dbNow()).getTime();
        const until = await leased(id, "worker-a", 300);
        expect(Math.abs(until.getTime() - (before + 300))).toBeLessThan(1_000);
        expect((await store.acquireLease(id, "worker-b", 300)).kind).toBe("held");
        await s.elapse(350);
        expect((await store.acquireLease(id, "worker-b", 30_000)).kind).toBe("acquired");
      });
    });

    it("is re-entrant for the same lease token only, which may move leaseUntil either way (forMs from the database's now)", async () => {
      const { id } = await seeded();
      await leased(id, "proc-1:1", 30_000);
      await expectLeaseFor(45_000, () => leased(id, "proc-1:1", 45_000));
      await expectLeaseFor(1_000, () => leased(id, "proc-1:1", 1_000));
      expect((await store.getMeta(id))?.leaseOwner).toBe("proc-1:1");
    });

    it("two lease tokens of one process (one owner prefix) are two owners: the second is held", async () => {
      const { id } = await seeded();
      const until = await leased(id, "proc-1:1");
      for (const other of ["proc-1:2", "proc-1", "proc-1:1:x", "PROC-1:1"]) {
        expect(await store.acquireLease(id, other, 30_000)).toEqual({
          kind: "held",
          meta: expect.objectContaining({ leaseOwner: "proc-1:1", leaseUntil: until }),
        });
      }
      await store.releaseLease(id, "proc-1:2");
      expect((await store.getMeta(id))?.leaseOwner).toBe("proc-1:1");
      await store.releaseLease(id, "proc-1:1");
      expect((await store.acquireLease(id, "proc-1:2", 30_000)).kind).toBe("acquired");
    });

    it("a half-cleared lease (one column null) is free", async () => {
      const a = await seeded();
      await s.setLease(a.id, "worker-a", null);
      expect((await store.acquireLease(a.id, "worker-b", 30_000)).kind).toBe("acquired");
      const b = await seeded();
      await s.setLease(b.id, null, new Date((await s.dbNow()).getTime() + 3_600_000));
      expect((await store.acquireLease(b.id, "worker-b", 30_000)).kind).toBe("acquired");
    });

    it("reports a missing row", async () => {
      expect(await store.acquireLease(ulid(), "worker-a", 30_000)).toEqual({ kind: "missing" });
    });

    it("release by another owner does nothing; by the holder frees both columns; on a missing row is a no-op", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-a");
      await store.releaseLease(id, "worker-b");
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-a", leaseUntil: until });
      await store.releaseLease(id, "worker-a");
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: null, leaseUntil: null, updatedAt: T0, version: 1 });
      await expect(store.releaseLease(ulid(), "worker-a")).resolves.toBeUndefined();
    });

    it("an undecryptable row: get throws TokenDecryptError, getMeta works, acquireLease throws and hands the lease back", async () => {
      const { id } = await seeded();
      await s.corrupt(id);
      await expect(store.get(id)).rejects.toThrow(TokenDecryptError);
      expect((await store.getMeta(id))?.version).toBe(1);
      await expect(store.acquireLease(id, "worker-a", 30_000)).rejects.toThrow(TokenDecryptError);
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: null, leaseUntil: null });
    });

    it("an undecryptable row held by someone else is reported held (nothing is decrypted)", async () => {
      const { id } = await seeded();
      await leased(id, "worker-b");
      await s.corrupt(id);
      expect(await store.acquireLease(id, "worker-a", 30_000)).toMatchObject({ kind: "held", meta: { leaseOwner: "worker-b" } });
    });
  });

  describe("saveRotated (compare-and-swap on version)", () => {
    it("wins with the right version: new pair as issued, version + 1, our lease and the failures cleared, status ACTIVE", async () => {
      const { id } = await seeded();
      await store.touchLastUsed(id, at(1));
      await leased(id, "worker-a");
      await store.recordFailure(failure(id, at(2), { rotationUncertain: true, owner: "someone-else" }));
      await store.markReconnectRequired({
        userUlid: id,
        expectedVersion: 1,
        owner: "someone-else",
        code: "calcom.refresh_rejected",
        now: at(3),
      });
      const next = pair({ accessTokenExpiresAt: at(7200), refreshTokenExpiresAt: null });
      const res = await store.saveRotated(rotated(id, { pair: next, nextRefreshAt: at(6600), now: at(5) }));
      expect(res).toEqual({
        ok: true,
        meta: {
          userUlid: id,
          kind: "managed",
          calUserId: 42,
          accessTokenExpiresAt: at(7200),
          refreshTokenExpiresAt: null,
          status: "ACTIVE",
          version: 2,
          leaseOwner: null,
          leaseUntil: null,
          rotationUncertain: false,
          refreshTokenRejected: false,
          failureCount: 0,
          firstFailureAt: null,
          lastFailureAt: null,
          lastFailureCode: null,
          lastRefreshedAt: at(5),
          nextRefreshAt: at(6600),
          lastUsedAt: at(1),
          createdAt: T0,
          updatedAt: at(5),
        },
      });
      expect(await row(id)).toMatchObject({ accessToken: next.accessToken, refreshToken: next.refreshToken });
      // The old version can never be written again.
      expect(await store.saveRotated(rotated(id, { now: at(6) }))).toEqual({ ok: false });
    });

    it("loses with a stale version (or a missing row): nothing changes, no audit row", async () => {
      const { id } = await seeded();
      await leased(id, "worker-a");
      const before = await row(id);
      const audit = { outcome: "REFRESHED" as const, trigger: "worker", durationMs: 5 };
      expect(await store.saveRotated(rotated(id, { expectedVersion: 2, audit }))).toEqual({ ok: false });
      expect(await store.saveRotated(rotated(id, { expectedVersion: 0, audit }))).toEqual({ ok: false });
      expect(await row(id)).toEqual(before);
      expect(await s.audits(id)).toEqual([]);
      expect(await store.saveRotated(rotated(ulid()))).toEqual({ ok: false });
    });

    it("leaves someone else's lease in place (the version, not the lease, is the guard)", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-b");
      const res = await store.saveRotated(rotated(id, { owner: "worker-a" }));
      expect(res.ok && res.meta).toMatchObject({ version: 2, leaseOwner: "worker-b", leaseUntil: until });
    });

    it("writes the audit row only when asked, with the new version and the caller's now", async () => {
      const { id } = await seeded();
      expect((await store.saveRotated(rotated(id, { now: at(5) }))).ok).toBe(true);
      expect(await s.audits(id)).toEqual([]);
      const audit = { outcome: "FORCE_REFRESHED" as const, trigger: "on_demand", durationMs: 321 };
      expect((await store.saveRotated(rotated(id, { expectedVersion: 2, now: at(9), audit }))).ok).toBe(true);
      expect(await s.audits(id)).toEqual([
        { outcome: "FORCE_REFRESHED", trigger: "on_demand", errorCode: null, version: 3, durationMs: 321, createdAt: at(9) },
      ]);
    });
  });

  describe("recordFailure (damped, CAS on version)", () => {
    it("counts once per window since the first failure of the streak; flags stick; releases our lease; keeps the version", async () => {
      const { id } = await seeded();
      await leased(id, "worker-a");
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
        updatedAt: at(10),
      });
      // A burst inside the first window is one failure; rotationUncertain is OR-ed, not overwritten.
      const justBefore = new Date(at(10).getTime() + WINDOW_MS - 1);
      expect(await store.recordFailure(failure(id, justBefore, { code: "calcom.timeout" }))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({
        failureCount: 1,
        firstFailureAt: at(10),
        lastFailureAt: justBefore,
        lastFailureCode: "calcom.timeout",
        rotationUncertain: true,
      });
      // Exactly one window after the first failure: 1 + floor(1) = 2.
      expect(await store.recordFailure(failure(id, new Date(at(10).getTime() + WINDOW_MS)))).toBe(true);
      expect((await store.getMeta(id))?.failureCount).toBe(2);
      expect(await store.recordFailure(failure(id, new Date(at(10).getTime() + WINDOW_MS + 1000)))).toBe(true);
      expect((await store.getMeta(id))?.failureCount).toBe(2);
      // After a long quiet spell the count jumps to the number of windows elapsed since the first failure.
      expect(await store.recordFailure(failure(id, at(10 + 10 * (WINDOW_MS / 1000))))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({ failureCount: 11, firstFailureAt: at(10), version: 1 });
    });

    it("marks a rejected refresh token (OR-ed, like rotationUncertain); a rotated pair or a save clears it", async () => {
      const { id } = await seeded();
      expect((await store.getMeta(id))?.refreshTokenRejected).toBe(false);
      expect(await store.recordFailure(failure(id, at(10), { refreshTokenRejected: true }))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({ refreshTokenRejected: true, version: 1 });
      expect(await store.recordFailure(failure(id, at(11)))).toBe(true);
      expect((await store.get(id))?.refreshTokenRejected).toBe(true);
      expect(await store.saveRotated(rotated(id, { now: at(12) }))).toMatchObject({ ok: true, meta: { refreshTokenRejected: false } });
      expect(await store.recordFailure(failure(id, at(13), { expectedVersion: 2, refreshTokenRejected: true }))).toBe(true);
      expect(await store.save(saveInput(id, { now: at(14) }))).toMatchObject({ refreshTokenRejected: false, version: 3 });
    });

    it("a clock that goes backwards never lowers the count", async () => {
      const { id } = await seeded();
      await store.recordFailure(failure(id, at(1000)));
      await store.recordFailure(failure(id, at(1000 + 2 * (WINDOW_MS / 1000))));
      expect((await store.getMeta(id))?.failureCount).toBe(3);
      expect(await store.recordFailure(failure(id, at(0)))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({ failureCount: 3, firstFailureAt: at(1000), lastFailureAt: at(0) });
    });

    it("a stale version touches nothing; a missing row is false; someone else's lease is kept", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-b");
      const before = await row(id);
      expect(await store.recordFailure(failure(id, at(10), { expectedVersion: 0 }))).toBe(false);
      expect(await store.recordFailure(failure(id, at(10), { expectedVersion: 2 }))).toBe(false);
      expect(await row(id)).toEqual(before);
      expect(await store.recordFailure(failure(ulid(), at(10)))).toBe(false);
      expect(await store.recordFailure(failure(id, at(10)))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({ leaseOwner: "worker-b", leaseUntil: until, failureCount: 1 });
    });

    it("counts from the firstFailureAt a reconnect mark left, and does not touch the status", async () => {
      const { id } = await seeded();
      await store.markReconnectRequired({
        userUlid: id,
        expectedVersion: 1,
        owner: "worker-a",
        code: "calcom.refresh_rejected",
        now: at(10),
      });
      expect(await store.getMeta(id)).toMatchObject({ failureCount: 0, firstFailureAt: at(10) });
      expect(await store.recordFailure(failure(id, at(10 + 2 * (WINDOW_MS / 1000))))).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({ failureCount: 3, status: "RECONNECT_REQUIRED" });
    });

    it("a zero failure window is refused once a streak has started (division by zero)", async () => {
      const { id } = await seeded();
      expect(await store.recordFailure(failure(id, at(10), { failureWindowMs: 0 }))).toBe(true);
      await expect(store.recordFailure(failure(id, at(20), { failureWindowMs: 0 }))).rejects.toThrow();
      expect(await store.getMeta(id)).toMatchObject({ failureCount: 1, lastFailureAt: at(10) });
    });
  });

  describe("markReconnectRequired (CAS on version)", () => {
    it("a stale version changes nothing; the right one sets the status and failure fields, releases our lease, keeps the rest", async () => {
      const { id } = await seeded();
      await store.recordFailure(failure(id, at(5), { rotationUncertain: true, owner: "nobody" }));
      await leased(id, "worker-a");
      const mark = { userUlid: id, owner: "worker-a", code: "calcom.refresh_rejected", now: at(12) };
      const before = await row(id);
      expect(await store.markReconnectRequired({ ...mark, expectedVersion: 2 })).toBe(false);
      expect(await row(id)).toEqual(before);

      expect(await store.markReconnectRequired({ ...mark, expectedVersion: 1 })).toBe(true);
      expect(await store.getMeta(id)).toEqual({
        ...before!,
        accessToken: undefined,
        refreshToken: undefined,
        status: "RECONNECT_REQUIRED",
        lastFailureCode: "calcom.refresh_rejected",
        lastFailureAt: at(12),
        firstFailureAt: at(5),
        failureCount: 1,
        rotationUncertain: true,
        nextRefreshAt: at(35),
        leaseOwner: null,
        leaseUntil: null,
        version: 1,
        updatedAt: at(12),
      });
      // A new connect flow brings the user back.
      expect(await store.save(saveInput(id, { now: at(20) }))).toMatchObject({
        status: "ACTIVE",
        version: 2,
        lastFailureCode: null,
        firstFailureAt: null,
      });
    });

    it("keeps someone else's lease; false for a missing row", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-b");
      expect(await store.markReconnectRequired({ userUlid: id, expectedVersion: 1, owner: "worker-a", code: "x", now: at(1) })).toBe(true);
      expect(await store.getMeta(id)).toMatchObject({
        status: "RECONNECT_REQUIRED",
        leaseOwner: "worker-b",
        leaseUntil: until,
        firstFailureAt: at(1),
      });
      expect(await store.markReconnectRequired({ userUlid: ulid(), expectedVersion: 1, owner: "worker-a", code: "x", now: at(1) })).toBe(
        false,
      );
    });
  });

  describe("reschedule (an idle user's job re-planned: CAS on version, no new version)", () => {
    it("moves next_refresh_at only: same version, updatedAt, pair and lease; no audit row", async () => {
      const { id } = await seeded();
      const until = await leased(id, "worker-b");
      const before = await row(id);
      const parked = at(30 * 86400);
      expect(await store.reschedule({ userUlid: id.toLowerCase(), expectedVersion: 1, nextRefreshAt: parked, idleSince: at(0) })).toBe(
        true,
      );
      expect(await row(id)).toEqual({ ...before!, nextRefreshAt: parked, leaseOwner: "worker-b", leaseUntil: until });
      expect(await s.audits(id)).toEqual([]);
    });

    it("refuses a stale version, a failure streak (its next_refresh_at is the cool-down), a reconnect and a missing row", async () => {
      const { id } = await seeded();
      const later = { nextRefreshAt: at(30 * 86400), idleSince: at(0) };
      const before = await row(id);
      expect(await store.reschedule({ userUlid: id, expectedVersion: 2, ...later })).toBe(false);
      expect(await row(id)).toEqual(before);

      await store.recordFailure(failure(id, at(5), { owner: "nobody" }));
      const failing = await row(id);
      expect(await store.reschedule({ userUlid: id, expectedVersion: 1, ...later })).toBe(false);
      expect(await row(id)).toEqual(failing);

      const other = (await seeded()).id;
      await store.markReconnectRequired({ userUlid: other, expectedVersion: 1, owner: "nobody", code: "x", now: at(1) });
      const reconnect = await row(other);
      expect(await store.reschedule({ userUlid: other, expectedVersion: 1, ...later })).toBe(false);
      expect(await row(other)).toEqual(reconnect);

      expect(await store.reschedule({ userUlid: ulid(), expectedVersion: 1, ...later })).toBe(false);
    });

    it("a rotation after it wins (the version moved); a reschedule after a rotation is refused", async () => {
      const { id } = await seeded();
      expect(await store.reschedule({ userUlid: id, expectedVersion: 1, nextRefreshAt: at(30 * 86400), idleSince: at(0) })).toBe(true);
      expect(await store.saveRotated(rotated(id, { nextRefreshAt: at(4000) }))).toMatchObject({ ok: true, meta: { version: 2 } });
      expect(await store.reschedule({ userUlid: id, expectedVersion: 1, nextRefreshAt: at(60 * 86400), idleSince: at(0) })).toBe(false);
      expect(await store.getMeta(id)).toMatchObject({ version: 2, nextRefreshAt: at(4000) });
    });
  });

  describe("reschedule and a user who came back", () => {
    it("refuses when a request path used the token since idleSince (touchLastUsed bumps no version)", async () => {
      const { id } = await seeded();
      await store.touchLastUsed(id, at(100));
      const before = await row(id);
      expect(await store.reschedule({ userUlid: id, expectedVersion: 1, nextRefreshAt: at(30 * 86400), idleSince: at(100) })).toBe(false);
      expect(await row(id)).toEqual(before);
      expect(await store.reschedule({ userUlid: id, expectedVersion: 1, nextRefreshAt: at(30 * 86400), idleSince: at(101) })).toBe(true);
    });
  });

  describe("markRefreshTokenRejected (CAS on version)", () => {
    it("sets the flag and nothing else; a stale version or a missing row is refused", async () => {
      const { id } = await seeded();
      const before = await row(id);
      expect(await store.markRefreshTokenRejected({ userUlid: id, expectedVersion: 2 })).toBe(false);
      expect(await row(id)).toEqual(before);
      expect(await store.markRefreshTokenRejected({ userUlid: id.toLowerCase(), expectedVersion: 1 })).toBe(true);
      expect(await row(id)).toEqual({ ...before!, refreshTokenRejected: true });
      expect(await store.markRefreshTokenRejected({ userUlid: ulid(), expectedVersion: 1 })).toBe(false);
    });
  });

  describe("touchLastUsed", () => {
    it("writes at most once per 60 s (strictly older than now - 60 s), never touching updatedAt or version", async () => {
      const { id } = await seeded();
      await store.touchLastUsed(id, at(10));
      expect((await store.getMeta(id))?.lastUsedAt).toEqual(at(10));
      await store.touchLastUsed(id, at(69));
      expect((await store.getMeta(id))?.lastUsedAt).toEqual(at(10));
      await store.touchLastUsed(id, at(70));
      expect((await store.getMeta(id))?.lastUsedAt).toEqual(at(10));
      await store.touchLastUsed(id, new Date(at(70).getTime() + 1));
      expect(await store.getMeta(id)).toMatchObject({ lastUsedAt: new Date(at(70).getTime() + 1), updatedAt: T0, version: 1 });
      // An older now never moves it back.
      await store.touchLastUsed(id, at(0));
      expect((await store.getMeta(id))?.lastUsedAt).toEqual(new Date(at(70).getTime() + 1));
    });

    it("is a silent no-op for a missing row", async () => {
      await expect(store.touchLastUsed(ulid(), T0)).resolves.toBeUndefined();
    });
  });

  describe("insertAudit", () => {
    it("one row per call, optional fields null; refused for a user without a token row", async () => {
      const { id } = await seeded();
      await store.insertAudit({ userUlid: id, outcome: "REFRESHED", trigger: "worker", version: 2, durationMs: 123 });
      await store.insertAudit({ userUlid: id, outcome: "FAILED_TRANSIENT", trigger: "on_demand", errorCode: "calcom.timeout" });
      expect((await s.audits(id)).map(({ createdAt: _createdAt, ...rest }) => rest)).toEqual([
        { outcome: "REFRESHED", trigger: "worker", errorCode: null, version: 2, durationMs: 123 },
        { outcome: "FAILED_TRANSIENT", trigger: "on_demand", errorCode: "calcom.timeout", version: null, durationMs: null },
      ]);
      await expect(store.insertAudit({ userUlid: ulid(), outcome: "CONFIG_ERROR", trigger: "cli" })).rejects.toThrow();
    });
  });

  describe("user ULIDs are case-insensitive", () => {
    it("every method finds the upper-case row through a lower-case id", async () => {
      const id = ulid();
      const lower = id.toLowerCase();
      const input = saveInput(lower);
      expect((await store.save(input))?.userUlid).toBe(id);
      expect((await store.get(lower))?.refreshToken).toBe(input.pair.refreshToken);
      expect((await store.getMeta(lower))?.userUlid).toBe(id);
      expect(await store.save({ ...saveInput(lower), ifAbsent: true })).toBeNull();

      const lease = await store.acquireLease(lower, "worker-a", 30_000);
      expect(lease.kind === "acquired" && lease.token.userUlid).toBe(id);
      await store.releaseLease(lower, "worker-a");
      expect((await store.getMeta(id))?.leaseOwner).toBeNull();

      expect(await store.recordFailure(failure(lower, at(1)))).toBe(true);
      expect(await store.markReconnectRequired({ userUlid: lower, expectedVersion: 1, owner: "worker-a", code: "x", now: at(2) })).toBe(
        true,
      );
      await store.touchLastUsed(lower, at(3));
      const audit = { outcome: "RECOVERED" as const, trigger: "worker", durationMs: 1 };
      expect(await store.saveRotated(rotated(lower, { now: at(4), audit }))).toMatchObject({
        ok: true,
        meta: { userUlid: id, version: 2, lastUsedAt: at(3) },
      });
      await store.insertAudit({ userUlid: lower, outcome: "REFRESHED", trigger: "cli" });
      expect((await s.audits(id)).map((a) => a.outcome)).toEqual(["RECOVERED", "REFRESHED"]);
      expect(await store.getMeta(id)).toMatchObject({ status: "ACTIVE", failureCount: 0 });
    });
  });

  describe("inputs Postgres refuses", () => {
    it("an invalid Date or a fractional version is an error, not a silent write", async () => {
      const { id } = await seeded();
      const before = await row(id);
      await expect(store.recordFailure(failure(id, at(1), { expectedVersion: 1.5 }))).rejects.toThrow();
      await expect(store.saveRotated(rotated(id, { nextRefreshAt: new Date(Number.NaN) }))).rejects.toThrow();
      expect(await row(id)).toEqual(before);
    });
  });
});
