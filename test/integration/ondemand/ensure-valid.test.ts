import { ulid } from "ulid";
import { recordForSecretScan } from "../../support/log-sink.js";
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.fake.faults.clear();
  h.fake.resetStats();
});

async function auditOutcomes(userUlid: string): Promise<string[]> {
  const rows = await h.db.calTokenAudit.findMany({ where: { userUlid }, orderBy: { id: "asc" } });
  return rows.map((r) => r.outcome);
}

describe("ensureValidCalToken", () => {
  it("returns a fresh token without calling Cal.com", async () => {
    const u = await h.seedManaged();
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({
      success: true,
      refreshed: false,
      tokenInfo: { userUlid: u.userUlid, accessToken: u.accessToken, status: "ACTIVE" },
    });
    expect(tokenEndpointCalls(h.fake)).toBe(0);
    expect(await auditOutcomes(u.userUlid)).toEqual([]);
  });

  it("refreshes an expiring token exactly once; row, audit and result agree", async () => {
    const u = await h.seedManaged();
    // The row says it expires in 30 s: inside the 120 s on-demand buffer.
    await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() + 30_000) } });
    const before = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res.success).toBe(true);
    expect(res.refreshed).toBe(true);
    const newToken = res.tokenInfo!.accessToken;
    expect(newToken).not.toBe(u.accessToken);
    expect(h.fake.isAccessTokenValid(newToken)).toBe(true);
    expect(h.fake.stats().refreshes).toBe(1);
    expect(tokenEndpointCalls(h.fake)).toBe(1);

    const after = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(after.version).toBe(before.version + 1);
    expect(after.accessTokenExpiresAt.getTime()).toBe(res.tokenInfo!.accessTokenExpiresAt.getTime());
    expect(after.leaseOwner).toBeNull();
    expect(after.nextRefreshAt.getTime()).toBeLessThan(after.accessTokenExpiresAt.getTime());
    expect(await auditOutcomes(u.userUlid)).toEqual(["REFRESHED"]);

    // The stored pair is the one Cal.com now honours: a second call is served from the row.
    const again = await h.client.ensureValidCalToken(u.userUlid);
    expect(again).toMatchObject({ success: true, refreshed: false, tokenInfo: { accessToken: newToken } });
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("forceRefresh refreshes a fresh token", async () => {
    const u = await h.seedManaged();
    const res = await h.client.ensureValidCalToken(u.userUlid, true);
    expect(res).toMatchObject({ success: true, refreshed: true });
    expect(h.fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("collapses 50 concurrent callers in one process into one refresh", async () => {
    const u = await h.seedManaged({ ttlMs: 1_000 });
    h.fake.faults.latencyMs = 150;
    const results = await Promise.all(Array.from({ length: 50 }, () => h.client.ensureValidCalToken(u.userUlid)));
    const tokens = new Set(results.map((r) => r.tokenInfo?.accessToken));
    expect(results.every((r) => r.success)).toBe(true);
    expect(tokens.size).toBe(1);
    expect(h.fake.stats().refreshes).toBe(1);
    expect(h.fake.stats().deadRefreshTokenUses).toBe(0);
  });

  it("records recent use for prioritisation", async () => {
    const u = await h.seedManaged();
    await h.client.ensureValidCalToken(u.userUlid);
    await new Promise((r) => setTimeout(r, 100));
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row.lastUsedAt).not.toBeNull();
  });

  it.each([
    ["an unknown user", () => ulid(), "token.not_found"],
    ["an invalid ULID", () => "user-123", "input.invalid_user_ulid"],
    ["an empty string", () => "", "input.invalid_user_ulid"],
  ])("answers %s with success:false and a stable code, not a throw", async (_label, makeId, code) => {
    const res = await h.client.ensureValidCalToken(makeId());
    recordForSecretScan(res);
    expect(res).toEqual({ success: false, refreshed: false, error: expect.objectContaining({ code, retryable: false }) });
    expect(tokenEndpointCalls(h.fake)).toBe(0);
  });

  it("reports a corrupt ciphertext with its own code and leaves the row untouched", async () => {
    const u = await h.seedManaged({ ttlMs: 10_000 });
    await h.db.$executeRaw`UPDATE cal_token SET access_token_enc = access_token_enc || 'x' WHERE user_ulid = ${u.userUlid}`;
    const before = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    const res = await h.client.ensureValidCalToken(u.userUlid);
    recordForSecretScan(res);
    expect(res).toMatchObject({ success: false, error: { code: "token.decrypt_failed", retryable: false } });
    const after = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(after).toEqual({ ...before, lastUsedAt: after.lastUsedAt });
    expect(tokenEndpointCalls(h.fake)).toBe(0);
  });

  it("a token encrypted for one user does not decrypt as another's", async () => {
    const a = await h.seedManaged();
    const b = await h.seedManaged();
    await h.db
      .$executeRaw`UPDATE cal_token SET access_token_enc = (SELECT access_token_enc FROM cal_token WHERE user_ulid = ${a.userUlid}) WHERE user_ulid = ${b.userUlid}`;
    const res = await h.client.ensureValidCalToken(b.userUlid);
    expect(res).toMatchObject({ success: false, error: { code: "token.decrypt_failed" } });
  });
});

describe("saveCalTokens and getCalTokenStatus", () => {
  it("rejects bad input with every problem listed and writes nothing", async () => {
    const userUlid = ulid();
    const err = await h.client
      .saveCalTokens({ userUlid, accessToken: "", refreshToken: "rt-value-0001", accessTokenExpiresAt: 1_700_000_000 })
      .then(
        () => {
          throw new Error("expected saveCalTokens to reject");
        },
        (e: unknown) => e as Error & { code: string },
      );
    recordForSecretScan(err);
    expect(err).toMatchObject({ code: "input.invalid" });
    expect(err.message).toMatch(/accessToken/);
    expect(err.message).toMatch(/accessTokenExpiresAt: epoch milliseconds expected/);
    expect(err.message).not.toContain("rt-value-0001");
    expect(await h.db.calToken.count({ where: { userUlid } })).toBe(0);
  });

  it("reports status without secrets", async () => {
    const u = await h.seedManaged();
    const status = await h.client.getCalTokenStatus(u.userUlid);
    expect(status).toMatchObject({
      userUlid: u.userUlid,
      kind: "managed",
      status: "ACTIVE",
      calUserId: u.calUserId,
      failureCount: 0,
      refreshInProgress: false,
    });
    const text = JSON.stringify(status);
    expect(text).not.toContain(u.accessToken);
    expect(text).not.toContain(u.refreshToken);
    expect(await h.client.getCalTokenStatus(ulid())).toBeNull();
    await expect(h.client.getCalTokenStatus("nope")).rejects.toMatchObject({ code: "input.invalid_user_ulid" });
  });

  it("re-saving after a reconnect resets the row to ACTIVE with a new version", async () => {
    const u = await h.seedOAuth2();
    await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { status: "RECONNECT_REQUIRED", failureCount: 3 } });
    const g = h.fake.createOAuth2Grant();
    await h.client.saveCalTokens({
      userUlid: u.userUlid,
      accessToken: g.accessToken,
      refreshToken: g.refreshToken,
      accessTokenExpiresAt: new Date(g.accessTokenExpiresAt),
      kind: "oauth2",
    });
    const status = await h.client.getCalTokenStatus(u.userUlid);
    expect(status).toMatchObject({ status: "ACTIVE", failureCount: 0, version: 2 });
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res.tokenInfo?.accessToken).toBe(g.accessToken);
  });
});
