import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import { TokenDecryptError } from "../../../src/core/errors.js";
import type { SaveTokensInput, TokenStore } from "../../../src/core/ports.js";
import type { TokenPair } from "../../../src/core/types.js";
import { createPrisma, type PrismaClient } from "../../../src/store/prisma.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { recordForSecretScan } from "../../support/log-sink.js";

// Save/read, encryption at rest, touchLastUsed and audit rows against the run's real Postgres.
// Lease and compare-and-swap behaviour lives in token-store-lease.test.ts.

const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const secret = (prefix: string): string => `${prefix}_${randomBytes(16).toString("hex")}`;
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

let prisma: PrismaClient;
let store: TokenStore;

beforeAll(() => {
  prisma = createPrisma(process.env.TEST_DATABASE_URL!);
  store = createTokenStore({ prisma, cipher: createTokenCipher([{ id: "t1", key: randomBytes(32) }]) });
});
afterAll(async () => {
  await prisma.$disconnect();
});

/** The whole row as Postgres renders it: for "no plaintext anywhere" and "row unchanged" checks. */
async function rowText(userUlid: string): Promise<string | null> {
  const rows = await prisma.$queryRaw<{ j: string }[]>`SELECT row_to_json(t)::text AS j FROM cal_token t WHERE user_ulid = ${userUlid}`;
  return rows[0]?.j ?? null;
}

describe("TokenStore: save and read", () => {
  it("save then get round-trips the pair and keeps no plaintext in the row", async () => {
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
    // RETURNING rows through the pg adapter: real Dates and numbers, not strings.
    expect(meta!.nextRefreshAt).toBeInstanceOf(Date);
    expect(typeof meta!.version).toBe("number");

    const record = await store.get(id);
    expect(record).toEqual({ ...meta, accessToken: input.pair.accessToken, refreshToken: input.pair.refreshToken });
    expect(await store.getMeta(id)).toEqual(meta);

    const text = (await rowText(id))!;
    expect(text).not.toContain(input.pair.accessToken);
    expect(text).not.toContain(input.pair.refreshToken);
    // Envelopes are written in the current format (v2, per-envelope subkey) under the active key id.
    expect(text).toMatch(/"access_token_enc":"v2\.t1\./);
    expect(text).toMatch(/"refresh_token_enc":"v2\.t1\./);
  });

  it("returns null for a user without a row", async () => {
    expect(await store.get(ulid())).toBeNull();
    expect(await store.getMeta(ulid())).toBeNull();
  });

  it("stores a null refresh expiry, oauth2 kind and null cal user id as given", async () => {
    const id = ulid();
    const meta = await store.save(saveInput(id, { kind: "oauth2", calUserId: null, pair: pair({ refreshTokenExpiresAt: null }) }));
    expect(meta).toMatchObject({ kind: "oauth2", calUserId: null, refreshTokenExpiresAt: null });
  });

  it("saving again replaces the pair, bumps the version and resets status, failures and lease", async () => {
    const id = ulid();
    await store.save(saveInput(id));
    await prisma.$executeRaw`UPDATE cal_token SET status = 'RECONNECT_REQUIRED', failure_count = 3,
      first_failure_at = ${at(10)}::timestamptz, last_failure_at = ${at(20)}::timestamptz, last_failure_code = 'calcom.refresh_rejected',
      rotation_uncertain = true, lease_owner = 'someone', lease_until = ${at(60)}::timestamptz, last_used_at = ${at(30)}::timestamptz
      WHERE user_ulid = ${id}`;

    const second = saveInput(id, { now: at(100), nextRefreshAt: at(4000), pair: pair({ accessTokenExpiresAt: at(4600) }) });
    const meta = await store.save(second);
    expect(meta).toMatchObject({
      version: 2,
      status: "ACTIVE",
      failureCount: 0,
      firstFailureAt: null,
      lastFailureAt: null,
      lastFailureCode: null,
      rotationUncertain: false,
      refreshTokenRejected: false,
      leaseOwner: null,
      leaseUntil: null,
      lastRefreshedAt: at(100),
      nextRefreshAt: at(4000),
      accessTokenExpiresAt: at(4600),
      createdAt: T0,
      updatedAt: at(100),
      lastUsedAt: at(30),
    });
    const record = (await store.get(id))!;
    expect(record.accessToken).toBe(second.pair.accessToken);
    expect(record.refreshToken).toBe(second.pair.refreshToken);
    expect((await store.save(saveInput(id)))!.version).toBe(3);
    // Insert-only leaves the stored pair alone.
    expect(await store.save({ ...saveInput(id), ifAbsent: true })).toBeNull();
    expect((await store.get(id))!.version).toBe(3);
  });

  it("normalises a lower-case ULID to the stored upper-case one", async () => {
    const id = ulid();
    const input = saveInput(id.toLowerCase());
    expect((await store.save(input))!.userUlid).toBe(id);
    expect((await store.get(id.toLowerCase()))?.accessToken).toBe(input.pair.accessToken);
  });
});

describe("TokenStore: ciphertext that does not authenticate", () => {
  it("get throws TokenDecryptError for a corrupted ciphertext and leaves the row untouched", async () => {
    const id = ulid();
    const input = saveInput(id);
    await store.save(input);
    // Flip one bit of the ciphertext segment (v1.<key>.<iv>.<ct>.<tag>): same shape, no longer authentic.
    const [row] = await prisma.$queryRaw<{ enc: string }[]>`SELECT refresh_token_enc AS enc FROM cal_token WHERE user_ulid = ${id}`;
    const parts = row!.enc.split(".");
    const ct = Buffer.from(parts[3]!, "base64url");
    ct[0] = ct[0]! ^ 1;
    parts[3] = ct.toString("base64url");
    await prisma.$executeRaw`UPDATE cal_token SET refresh_token_enc = ${parts.join(".")} WHERE user_ulid = ${id}`;
    const before = await rowText(id);

    const err = await store.get(id).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TokenDecryptError);
    recordForSecretScan(err);
    expect((err as Error).message).not.toContain(input.pair.refreshToken);
    expect(await rowText(id)).toBe(before);
    // Meta reads do not decrypt, so status pages still work for a corrupt row.
    expect((await store.getMeta(id))?.version).toBe(1);
  });

  it("a ciphertext copied from another user's row fails (ULID is associated data)", async () => {
    const alice = ulid();
    const mallory = ulid();
    await store.save(saveInput(alice));
    await store.save(saveInput(mallory));
    await prisma.$executeRaw`UPDATE cal_token SET access_token_enc = (SELECT access_token_enc FROM cal_token WHERE user_ulid = ${alice})
      WHERE user_ulid = ${mallory}`;
    await expect(store.get(mallory)).rejects.toThrow(TokenDecryptError);
  });

  it("acquireLease on a corrupt row throws and hands the lease back", async () => {
    const id = ulid();
    await store.save(saveInput(id));
    await prisma.$executeRaw`UPDATE cal_token SET access_token_enc = 'v1.t1.garbage' WHERE user_ulid = ${id}`;
    await expect(store.acquireLease(id, "worker-a", 30_000)).rejects.toThrow(TokenDecryptError);
    expect(await store.getMeta(id)).toMatchObject({ leaseOwner: null, leaseUntil: null });
  });
});

describe("TokenStore: touchLastUsed", () => {
  it("writes at most once a minute and leaves updated_at alone", async () => {
    const id = ulid();
    await store.save(saveInput(id));
    await store.touchLastUsed(id, at(10));
    expect((await store.getMeta(id))?.lastUsedAt).toEqual(at(10));
    await store.touchLastUsed(id, at(69));
    expect((await store.getMeta(id))?.lastUsedAt).toEqual(at(10));
    await store.touchLastUsed(id, at(71));
    const meta = (await store.getMeta(id))!;
    expect(meta.lastUsedAt).toEqual(at(71));
    expect(meta.updatedAt).toEqual(T0);
    expect(meta.version).toBe(1);
  });

  it("is a silent no-op for a missing row", async () => {
    await expect(store.touchLastUsed(ulid(), T0)).resolves.toBeUndefined();
  });
});

describe("TokenStore: insertAudit", () => {
  it("inserts one row per outcome with optional fields defaulting to null", async () => {
    const id = ulid();
    await store.save(saveInput(id));
    await store.insertAudit({ userUlid: id, outcome: "REFRESHED", trigger: "worker", version: 2, durationMs: 123 });
    await store.insertAudit({ userUlid: id, outcome: "FAILED_TRANSIENT", trigger: "on_demand", errorCode: "calcom.timeout" });
    const rows = await prisma.calTokenAudit.findMany({ where: { userUlid: id }, orderBy: { id: "asc" } });
    expect(
      rows.map(({ outcome, trigger, errorCode, version, durationMs }) => ({ outcome, trigger, errorCode, version, durationMs })),
    ).toEqual([
      { outcome: "REFRESHED", trigger: "worker", errorCode: null, version: 2, durationMs: 123 },
      { outcome: "FAILED_TRANSIENT", trigger: "on_demand", errorCode: "calcom.timeout", version: null, durationMs: null },
    ]);
    expect(typeof rows[0]!.id).toBe("bigint");
  });

  it("rejects an audit row for a user without a token row (foreign key)", async () => {
    await expect(store.insertAudit({ userUlid: ulid(), outcome: "CONFIG_ERROR", trigger: "cli" })).rejects.toThrow();
  });
});
