/**
 * completeCalConnection in a deployment with only an OAuth 2.0 app (no Platform client configured at
 * all), confidential and public: the callback connects the user in one call and the user stays usable;
 * refused, replayed and failed exchanges are coded and store nothing (docs/oauth2.md#the-callback).
 */
import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import { AppError } from "../../../src/core/errors.js";
import { s256 } from "../../fakes/calcom/index.js";
import { type Harness, startHarness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";

const REDIRECT = "https://app.example.test/cal/callback";
const NO_PLATFORM = { CAL_CLIENT_ID: "", CAL_CLIENT_SECRET: "" };
const verifier = () => randomBytes(32).toString("base64url");

/** The coded AppError a call threw (recorded for the suite's secret scan). */
async function thrown(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => new Error("expected completeCalConnection to throw"),
    (e: unknown) => e,
  );
  recordForSecretScan(err);
  if (!(err instanceof AppError)) throw err;
  return err;
}

const me = (base: string, token: string) => fetch(`${base}/v2/me`, { headers: { authorization: `Bearer ${token}` } });

describe("an OAuth 2.0-only deployment with a confidential app", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: NO_PLATFORM });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    h.fake.faults.clear();
    h.fake.resetStats();
  });

  it("one call exchanges the code, stores the pair and schedules it; the user then gets valid tokens", async () => {
    expect(h.client.config.calcom.platform).toBeNull();
    const v = verifier();
    const { code, calUserId } = h.fake.createAuthorizationCode({ redirectUri: REDIRECT, codeChallenge: s256(v) });
    const userUlid = ulid().toLowerCase();

    const status = await h.client.completeCalConnection({ userUlid, code, codeVerifier: v, redirectUri: REDIRECT });

    expect(status).toMatchObject({ userUlid: userUlid.toUpperCase(), kind: "oauth2", status: "ACTIVE", failureCount: 0, version: 1 });
    expect(status.nextRefreshAt.getTime()).toBeLessThan(status.accessTokenExpiresAt.getTime());
    expect(await h.client.getCalTokenStatus(userUlid)).toEqual(status);
    const token = await h.client.ensureValidCalToken(userUlid);
    expect(token).toMatchObject({ success: true, refreshed: false });
    const res = await me(h.fake.url, token.tokenInfo!.accessToken);
    expect(((await res.json()) as { data: { id: number } }).data.id).toBe(calUserId);
    const forced = await h.client.ensureValidCalToken(userUlid, true);
    expect(forced).toMatchObject({ success: true, refreshed: true });
    expect(h.fake.stats()).toMatchObject({ codeExchanges: 1, oauth2Refreshes: 1 });
    const logs = JSON.stringify(h.logs());
    expect(logs).toContain("Cal.com connection completed");
    expect(logs).not.toContain(v);
  });

  it("a refused code is connect.code_rejected and stores nothing: unknown, replayed, wrong redirect URI, wrong verifier", async () => {
    const v = verifier();
    const { code } = h.fake.createAuthorizationCode({ redirectUri: REDIRECT, codeChallenge: s256(v) });
    const connect = (userUlid: string, over: Record<string, string> = {}) =>
      h.client.completeCalConnection({ userUlid, code, codeVerifier: v, redirectUri: REDIRECT, ...over });
    const refused = [
      await thrown(connect(ulid(), { code: "fake_code_never-issued" })),
      await thrown(connect(ulid(), { redirectUri: `${REDIRECT}?x=1` })),
      await thrown(connect(ulid(), { codeVerifier: verifier() })),
    ];
    const first = ulid();
    await connect(first); // the checks above left the code usable
    const second = ulid();
    refused.push(await thrown(connect(second)));
    for (const err of refused) {
      expect(err).toMatchObject({ code: "connect.code_rejected", retryable: false });
      expect(err.message).toMatch(/^Cal\.com refused the authorization code .*start the connection again \(Cal\.com 400: invalid_grant: /);
      expect(err.message).not.toContain(code);
    }
    expect(refused.map((e) => e.message.match(/invalid_grant: (\w+)/)?.[1])).toEqual([
      "code_invalid_or_expired",
      "redirect_uri_mismatch",
      "invalid_code_verifier",
      "code_invalid_or_expired",
    ]);
    expect(await h.client.getCalTokenStatus(second)).toBeNull();
    expect((await h.client.getCalTokenStatus(first))?.version).toBe(1);
    expect(await h.db.calToken.count({ where: { userUlid: { in: [second] } } })).toBe(0);
  });

  it("Cal.com down is retryable and stores nothing; the unspent code then works", async () => {
    const { code } = h.fake.createAuthorizationCode();
    const userUlid = ulid();
    h.fake.faults.next("status503");
    const err = await thrown(h.client.completeCalConnection({ userUlid, code, redirectUri: REDIRECT }));
    expect(err).toMatchObject({ code: "calcom.transient", retryable: true });
    expect(await h.client.getCalTokenStatus(userUlid)).toBeNull();
    expect((await h.client.completeCalConnection({ userUlid, code, redirectUri: REDIRECT })).status).toBe("ACTIVE");
  });

  it("a user who must reconnect is ACTIVE again after a new connection", async () => {
    const first = h.fake.createAuthorizationCode();
    const userUlid = ulid();
    await h.client.completeCalConnection({ userUlid, code: first.code, redirectUri: REDIRECT });
    await h.db.calToken.update({ where: { userUlid }, data: { status: "RECONNECT_REQUIRED" } });
    expect((await h.client.ensureValidCalToken(userUlid)).error?.code).toBe("token.reconnect_required");
    const again = h.fake.createAuthorizationCode({ calUserId: first.calUserId });
    const status = await h.client.completeCalConnection({ userUlid, code: again.code, redirectUri: REDIRECT });
    expect(status).toMatchObject({ status: "ACTIVE", version: 2 });
    expect((await h.client.ensureValidCalToken(userUlid)).success).toBe(true);
  });

  it("bad input is input.invalid before any call, naming fields and never values", async () => {
    const { code } = h.fake.createAuthorizationCode();
    const bad = [
      await thrown(h.client.completeCalConnection({ userUlid: "not-a-ulid", code, redirectUri: REDIRECT })),
      await thrown(h.client.completeCalConnection({ userUlid: ulid(), code, redirectUri: "/cal/callback" })),
      await thrown(h.client.completeCalConnection({ userUlid: ulid(), code, redirectUri: REDIRECT, codeVerifier: "short" })),
      await thrown(h.client.completeCalConnection({ userUlid: ulid(), code, redirectUri: REDIRECT, code_verifier: "x" } as never)),
    ];
    expect(bad.map((e) => e.code)).toEqual(["input.invalid", "input.invalid", "input.invalid", "input.invalid"]);
    expect(bad.map((e) => e.message.split(": ")[2])).toEqual(["userUlid", "redirectUri", "codeVerifier", "input"]);
    for (const e of bad) expect(e.message).not.toContain(code);
    expect(h.fake.stats().calls["oauth2.token"]).toBe(0);
  });

  it("saveCalTokens refuses a managed user (the default kind): nothing here could refresh it", async () => {
    const g = h.fake.createOAuth2Grant();
    const userUlid = ulid();
    const err = await thrown(
      h.client.saveCalTokens({
        userUlid,
        accessToken: g.accessToken,
        refreshToken: g.refreshToken,
        accessTokenExpiresAt: g.accessTokenExpiresAt,
      }),
    );
    expect(err).toMatchObject({ code: "config.client_not_configured", retryable: false });
    expect(err.message).toMatch(/CAL_CLIENT_ID.*kind "oauth2"/);
    expect(await h.client.getCalTokenStatus(userUlid)).toBeNull();
  });
});

describe("an OAuth 2.0-only deployment with a public app (no secret, PKCE)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { ...NO_PLATFORM, CAL_OAUTH_CLIENT_ID: "fake-public-client", CAL_OAUTH_CLIENT_SECRET: "" } });
  });
  afterAll(() => h.close());

  it("connects with the verifier and refreshes without a client secret", async () => {
    expect(h.client.config.calcom.oauth2).toEqual({ clientId: "fake-public-client", clientSecret: null });
    const v = verifier();
    const { code } = h.fake.createAuthorizationCode({ clientId: "fake-public-client", redirectUri: REDIRECT, codeChallenge: s256(v) });
    const userUlid = ulid();
    expect(await h.client.completeCalConnection({ userUlid, code, codeVerifier: v, redirectUri: REDIRECT })).toMatchObject({
      kind: "oauth2",
      status: "ACTIVE",
    });
    const forced = await h.client.ensureValidCalToken(userUlid, true);
    expect(forced).toMatchObject({ success: true, refreshed: true });
    expect((await me(h.fake.url, forced.tokenInfo!.accessToken)).status).toBe(200);
    expect(h.fake.stats()).toMatchObject({ codeExchanges: 1, oauth2Refreshes: 1 });
  });

  it("without the verifier it refuses before calling Cal.com", async () => {
    h.fake.resetStats();
    const v = verifier();
    const { code } = h.fake.createAuthorizationCode({ clientId: "fake-public-client", codeChallenge: s256(v) });
    const err = await thrown(h.client.completeCalConnection({ userUlid: ulid(), code, redirectUri: REDIRECT }));
    expect(err).toMatchObject({ code: "input.invalid" });
    expect(err.message).toMatch(/codeVerifier: required: the OAuth 2\.0 app is a public client/);
    expect(h.fake.stats().calls["oauth2.token"]).toBe(0);
  });
});
