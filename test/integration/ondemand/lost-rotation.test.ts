import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";

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

const expireRow = (userUlid: string) =>
  h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
/** The failure started a cool-down (the row's nextRefreshAt); the next request path comes after it. */
const endCoolDown = (userUlid: string) => h.db.calToken.update({ where: { userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1) } });

describe("a refresh response lost after Cal.com rotated", () => {
  it("managed user: recovered by force-refresh, ends ACTIVE, without hammering", async () => {
    const u = await h.seedManaged();
    await expireRow(u.userUlid);
    h.fake.faults.next("dropAfterCommit");
    const first = await h.client.ensureValidCalToken(u.userUlid);
    recordForSecretScan(first);
    expect(first).toMatchObject({ success: false, error: { code: "calcom.transient", retryable: true } });
    expect(h.fake.isRefreshTokenLive(u.refreshToken)).toBe(false); // Cal.com rotated; we never saw the pair
    const afterDrop = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(afterDrop).toMatchObject({ rotationUncertain: true, version: 1, failureCount: 1, status: "ACTIVE" });
    // Inside the cool-down nothing calls Cal.com again; after it, one call finds the dead token.
    expect((await h.client.ensureValidCalToken(u.userUlid)).error?.retryAfterMs).toBeGreaterThan(0);
    expect(tokenEndpointCalls(h.fake)).toBe(1);
    await endCoolDown(u.userUlid);

    const second = await h.client.ensureValidCalToken(u.userUlid);
    expect(second).toMatchObject({ success: true, refreshed: true, tokenInfo: { status: "ACTIVE" } });
    expect(h.fake.isAccessTokenValid(second.tokenInfo!.accessToken)).toBe(true);
    const s = h.fake.stats();
    expect(s.refreshes).toBe(1);
    expect(s.forceRefreshes).toBe(1);
    expect(s.deadRefreshTokenUses).toBe(1); // exactly one try with the dead token, then recovery
    expect(tokenEndpointCalls(h.fake)).toBe(3);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ status: "ACTIVE", rotationUncertain: false, failureCount: 0, version: 2 });
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid }, orderBy: { id: "asc" } });
    expect(audits.map((a) => a.outcome)).toEqual(["FAILED_TRANSIENT", "FORCE_REFRESHED"]);
  });

  it("managed user whose force-refresh fails too: the retry force-refreshes without presenting the dead token again", async () => {
    const u = await h.seedManaged();
    await expireRow(u.userUlid);
    h.fake.faults.next("dropAfterCommit");
    await h.client.ensureValidCalToken(u.userUlid);
    await endCoolDown(u.userUlid);
    // The dead token is presented once (400), and the force-refresh that follows gets a 503.
    h.fake.faults.nextOn("managed.forceRefresh", "status503");
    expect((await h.client.ensureValidCalToken(u.userUlid)).error).toMatchObject({ code: "calcom.transient", retryable: true });
    const marked = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(marked).toMatchObject({ refreshTokenRejected: true, rotationUncertain: true, status: "ACTIVE", version: 1 });
    await endCoolDown(u.userUlid);

    const third = await h.client.ensureValidCalToken(u.userUlid);
    expect(third).toMatchObject({ success: true, refreshed: true });
    const s = h.fake.stats();
    expect(s.deadRefreshTokenUses).toBe(1);
    expect(s.forceRefreshes).toBe(1);
    expect(s.calls["managed.refresh"]).toBe(2); // the dropped rotation and the one rejected presentation
    expect(s.calls["managed.forceRefresh"]).toBe(2); // the 503, then the successful one
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ status: "ACTIVE", refreshTokenRejected: false, rotationUncertain: false, version: 2 });
  });

  it("OAuth2 user: ends RECONNECT_REQUIRED after one try, and stops calling Cal.com", async () => {
    const u = await h.seedOAuth2();
    await expireRow(u.userUlid);
    h.fake.faults.next("dropAfterCommit");
    await h.client.ensureValidCalToken(u.userUlid);
    await endCoolDown(u.userUlid);
    const second = await h.client.ensureValidCalToken(u.userUlid);
    recordForSecretScan(second);
    expect(second).toEqual({
      success: false,
      refreshed: false,
      error: expect.objectContaining({ code: "token.reconnect_required", retryable: false }),
    });
    const callsSoFar = tokenEndpointCalls(h.fake);
    expect(callsSoFar).toBe(2);
    const third = await h.client.ensureValidCalToken(u.userUlid, true);
    expect(third.error?.code).toBe("token.reconnect_required");
    expect(tokenEndpointCalls(h.fake)).toBe(callsSoFar);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row.status).toBe("RECONNECT_REQUIRED");
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid }, orderBy: { id: "asc" } });
    expect(audits.map((a) => a.outcome)).toEqual(["FAILED_TRANSIENT", "RECONNECT_REQUIRED"]);
  });

  it("managed user without a Cal.com user id cannot be force-refreshed: reconnect required", async () => {
    const u = await h.seedManaged({ withCalUserId: false });
    await expireRow(u.userUlid);
    h.fake.faults.next("malformedJson");
    await h.client.ensureValidCalToken(u.userUlid);
    await endCoolDown(u.userUlid);
    const second = await h.client.ensureValidCalToken(u.userUlid);
    expect(second.error?.code).toBe("token.reconnect_required");
    expect(h.fake.stats().forceRefreshes).toBe(0);
  });

  it("a rejection caused by another writer is not treated as a dead grant", async () => {
    const u = await h.seedManaged();
    await expireRow(u.userUlid);
    h.fake.faults.latencyMs = 600;
    const pending = h.client.ensureValidCalToken(u.userUlid);
    await new Promise((r) => setTimeout(r, 150));
    // Meanwhile the web app recovers the user itself: Cal.com force-refresh (which kills every older
    // token of the user, including the one our refresh is presenting) and a save of the new pair.
    h.fake.faults.latencyMs = 0;
    const forced = await fetch(`${h.fake.url}/v2/oauth-clients/fake-client/users/${u.calUserId}/force-refresh`, {
      method: "POST",
      headers: { "x-cal-secret-key": "fake-secret" },
    });
    expect(forced.status).toBe(200);
    const pair = ((await forced.json()) as { data: { accessToken: string; refreshToken: string; accessTokenExpiresAt: number } }).data;
    await h.newClient().saveCalTokens({ userUlid: u.userUlid, ...pair, calUserId: u.calUserId });

    const res = await pending; // our refresh was rejected (its token died); the re-read finds the new pair
    expect(res).toMatchObject({ success: true, tokenInfo: { accessToken: pair.accessToken } });
    expect(h.fake.stats().forceRefreshes).toBe(1); // only the web app's: we did not force-refresh over it
    expect(h.fake.isAccessTokenValid(pair.accessToken)).toBe(true);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ version: 2, status: "ACTIVE" });
    const now = await h.client.ensureValidCalToken(u.userUlid);
    expect(now.tokenInfo?.accessToken).toBe(pair.accessToken);
  });
});
