import type { Fault } from "../../fakes/calcom/index.js";
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";

let h: Harness;
beforeAll(async () => {
  // A short HTTP timeout so the hang faults resolve quickly (the lease must still outlive it).
  h = await startHarness({ env: { CAL_HTTP_TIMEOUT_MS: "500", REFRESH_LEASE_SECONDS: "6" } });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.fake.faults.clear();
  h.fake.resetStats();
});

const setExpiry = (userUlid: string, msFromNow: number) =>
  h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() + msFromNow) } });

// fault → [error code, did Cal.com commit a rotation (so the stored token is probably dead)?]
const CASES: [Fault, string, boolean][] = [
  ["status500", "calcom.transient", false],
  ["status503", "calcom.transient", false],
  ["html502", "calcom.transient", true],
  ["malformedJson", "calcom.malformed_response", true],
  ["wrongShape", "calcom.malformed_response", true],
  ["dropAfterCommit", "calcom.transient", true],
  ["hang", "calcom.timeout", true],
  ["hangAfterCommit", "calcom.timeout", true],
  ["rateLimit", "calcom.rate_limited", false],
];

describe.each(CASES)("fault %s", (fault, code, uncertain) => {
  it(`yields ${code}, one call, and writes nothing but failure bookkeeping`, async () => {
    const u = await h.seedManaged();
    await setExpiry(u.userUlid, -1_000);
    const before = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    h.fake.faults.next(fault);
    const res = await h.client.ensureValidCalToken(u.userUlid);
    recordForSecretScan(res);
    expect(res).toEqual({ success: false, refreshed: false, error: expect.objectContaining({ code, retryable: true }) });
    expect(tokenEndpointCalls(h.fake)).toBe(1); // never retried inline
    const after = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    // The pair, its version and its expiry are untouched; only bookkeeping moved.
    expect(after).toMatchObject({
      accessTokenEnc: before.accessTokenEnc,
      refreshTokenEnc: before.refreshTokenEnc,
      version: before.version,
      status: "ACTIVE",
      leaseOwner: null,
      rotationUncertain: uncertain,
      failureCount: 1,
      lastFailureCode: code,
    });
    expect(after.nextRefreshAt.getTime()).toBeGreaterThan(Date.now());
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid } });
    expect(audits.map((a) => [a.outcome, a.errorCode])).toEqual([["FAILED_TRANSIENT", code]]);
  });
});

describe("a failing refresh while the current token is still valid", () => {
  it("does not break the request path: success with the current token and the error attached", async () => {
    const u = await h.seedManaged();
    await setExpiry(u.userUlid, 60_000); // inside the on-demand buffer, still valid
    h.fake.faults.next("status503");
    const res = await h.client.ensureValidCalToken(u.userUlid);
    recordForSecretScan({ error: res.error });
    expect(res).toMatchObject({
      success: true,
      refreshed: false,
      tokenInfo: { accessToken: u.accessToken },
      error: { code: "calcom.transient" },
    });
  });

  it("the next attempt succeeds once Cal.com recovers", async () => {
    const u = await h.seedManaged();
    await setExpiry(u.userUlid, 60_000);
    h.fake.faults.next("status503");
    await h.client.ensureValidCalToken(u.userUlid);
    // Once the cool-down the failure started is over (the row's nextRefreshAt), the next call refreshes.
    await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1) } });
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({ success: true, refreshed: true });
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ failureCount: 0, lastFailureCode: null, version: 2 });
  });
});

describe("wrong client credentials", () => {
  it("is a config error (retryable: a probe resumes calls by itself), the user is not marked, nothing rotates", async () => {
    // Its own queue prefix: the configuration breaker it opens is fleet-wide and must not stop the other tests.
    const bad = h.newClient({ CAL_CLIENT_SECRET: "definitely-wrong", QUEUE_PREFIX: `${h.env().QUEUE_PREFIX}bad` });
    const u = await h.seedManaged();
    await setExpiry(u.userUlid, -1_000);
    const res = await bad.ensureValidCalToken(u.userUlid);
    recordForSecretScan(res);
    expect(res).toMatchObject({ success: false, error: { code: "calcom.config_error", retryable: true } });
    expect(JSON.stringify(res)).not.toContain("definitely-wrong");
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ status: "ACTIVE", version: 1, leaseOwner: null });
    expect(h.fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
  });
});
