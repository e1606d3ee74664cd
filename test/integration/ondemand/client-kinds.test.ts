/**
 * Each kind of user needs its own Cal.com client (docs/oauth2.md#configuration). A Platform-only
 * deployment works as before; a user whose kind has no client configured in this process gets a coded
 * failure for its refresh, and Cal.com is never called with nothing.
 */
import { ulid } from "ulid";
import { AppError } from "../../../src/core/errors.js";
import { type Harness, startHarness, tokenEndpointCalls } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";

const BOTH = {
  CAL_CLIENT_ID: "fake-client",
  CAL_CLIENT_SECRET: "fake-secret",
  CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
  CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
};

async function thrown(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => new Error("expected a throw"),
    (e: unknown) => e,
  );
  recordForSecretScan(err);
  if (!(err instanceof AppError)) throw err;
  return err;
}

/** Moves a stored access token's expiry into the past (the row only; Cal.com's token is untouched). */
async function expireRow(h: Harness, userUlid: string): Promise<void> {
  await h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
}

describe("a Platform-only deployment", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { CAL_OAUTH_CLIENT_ID: "", CAL_OAUTH_CLIENT_SECRET: "" } });
  });
  afterAll(() => h.close());
  beforeEach(() => h.fake.resetStats());

  it("keeps its managed users fresh as before", async () => {
    expect(h.client.config.calcom.oauth2).toBeNull();
    const u = await h.seedManaged();
    await expireRow(h, u.userUlid);
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({ success: true, refreshed: true });
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("an oauth2 user stored by another process gets config.client_not_configured, and Cal.com is not called", async () => {
    const full = h.newClient(BOTH);
    const g = h.fake.createOAuth2Grant();
    const userUlid = ulid();
    await full.saveCalTokens({
      userUlid,
      accessToken: g.accessToken,
      refreshToken: g.refreshToken,
      accessTokenExpiresAt: g.accessTokenExpiresAt,
      kind: "oauth2",
    });
    await expireRow(h, userUlid);
    const res = await h.client.ensureValidCalToken(userUlid);
    recordForSecretScan(res);
    expect(res).toEqual({
      success: false,
      refreshed: false,
      error: {
        code: "config.client_not_configured",
        message: "no Cal.com OAuth 2.0 app is configured (CAL_OAUTH_CLIENT_ID): oauth2 users cannot be refreshed or connected",
        retryable: false,
      },
    });
    expect(tokenEndpointCalls(h.fake)).toBe(0);
    // The row is left alone: nothing is wrong with the user.
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
    expect([row.status, row.failureCount, row.lastFailureCode]).toEqual(["ACTIVE", 0, null]);
    // Another process with the app refreshes the same user normally.
    expect(await full.ensureValidCalToken(userUlid)).toMatchObject({ success: true, refreshed: true });
  });

  it("refuses to connect or to save an oauth2 user", async () => {
    const { code } = h.fake.createAuthorizationCode();
    const connect = await thrown(h.client.completeCalConnection({ userUlid: ulid(), code, redirectUri: "https://app.example.test/cb" }));
    expect(connect).toMatchObject({ code: "config.client_not_configured", retryable: false });
    const g = h.fake.createOAuth2Grant();
    const save = await thrown(
      h.client.saveCalTokens({
        userUlid: ulid(),
        accessToken: g.accessToken,
        refreshToken: g.refreshToken,
        accessTokenExpiresAt: g.accessTokenExpiresAt,
        kind: "oauth2",
      }),
    );
    expect(save).toMatchObject({ code: "config.client_not_configured" });
    expect(tokenEndpointCalls(h.fake)).toBe(0);
  });
});

describe("an OAuth 2.0-only deployment", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { CAL_CLIENT_ID: "", CAL_CLIENT_SECRET: "" } });
  });
  afterAll(() => h.close());

  it("a managed user stored by another process: a coded failure, a still-valid token is still handed out", async () => {
    const full = h.newClient(BOTH);
    const u = h.fake.createManagedUser();
    const userUlid = ulid();
    await full.saveCalTokens({
      userUlid,
      accessToken: u.accessToken,
      refreshToken: u.refreshToken,
      accessTokenExpiresAt: u.accessTokenExpiresAt,
      calUserId: u.calUserId,
    });
    h.fake.resetStats();
    // Inside the on-demand buffer but still valid: the refresh fails, the token is still usable.
    await h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() + 60_000) } });
    const res = await h.client.ensureValidCalToken(userUlid);
    expect(res).toMatchObject({
      success: true,
      refreshed: false,
      tokenInfo: { accessToken: u.accessToken },
      error: { code: "config.client_not_configured" },
    });
    expect(res.error?.message).toMatch(/Platform client is configured \(CAL_CLIENT_ID, CAL_CLIENT_SECRET\)/);
    // A rejected access token cannot be recovered either, and no call goes out.
    const rejected = new Response(
      JSON.stringify({ status: "error", error: { code: "TokenExpiredException", message: "ACCESS_TOKEN_IS_EXPIRED" } }),
      { status: 498 },
    );
    const back = await h.client.handleCalApiResponse(rejected, () => Promise.reject(new Error("no replay expected")), userUlid, {
      accessToken: u.accessToken,
    });
    expect(back.status).toBe(498);
    expect(tokenEndpointCalls(h.fake)).toBe(0);
  });
});
