/**
 * The fake's authorization-code grant (docs/calcom-api.md#oauth2-authorization-code): codes minted by a
 * test hook, single use, ten minutes, bound to a redirect URI and a PKCE S256 challenge; confidential
 * and public clients.
 */
import { randomBytes } from "node:crypto";
import { type FakeCalcom, s256, startFakeCalcom } from "../../fakes/calcom/index.js";
import { call, me } from "./http.js";

const REDIRECT = "https://app.example.test/cal/callback";
const CONFIDENTIAL = { client_id: "fake-oauth-client", client_secret: "fake-oauth-secret" };
const PUBLIC = { client_id: "fake-public-client" };

function exchange(base: string, fields: Record<string, string>) {
  return call(`${base}/v2/auth/oauth2/token`, { body: { grant_type: "authorization_code", redirect_uri: REDIRECT, ...fields } });
}
const verifier = () => randomBytes(32).toString("base64url");

describe("fake Cal.com: authorization codes", () => {
  let fake: FakeCalcom;
  let now = Date.now();
  beforeAll(async () => {
    fake = await startFakeCalcom({ now: () => now });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    now = Date.now();
    fake.resetStats();
    fake.faults.clear();
  });

  it("exchanges a code once for an RFC 6749 pair of a new grant; a replay is invalid_grant", async () => {
    const { code, calUserId } = fake.createAuthorizationCode({ redirectUri: REDIRECT });
    const ok = await exchange(fake.url, { ...CONFIDENTIAL, code });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({
      access_token: expect.stringMatching(/^fake_oat_/),
      token_type: "bearer",
      refresh_token: expect.stringMatching(/^fake_ort_/),
      expires_in: 1800,
    });
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect((await me(fake.url, ok.json.access_token)).json.data.id).toBe(calUserId);
    expect(fake.isRefreshTokenLive(ok.json.refresh_token)).toBe(true);

    const replay = await exchange(fake.url, { ...CONFIDENTIAL, code });
    expect(replay.status).toBe(400);
    expect(replay.json).toEqual({ error: "invalid_grant", error_description: "code_invalid_or_expired" });
    expect(fake.stats()).toMatchObject({ codeExchanges: 1, rejectedCodes: 1 });
    expect(fake.stats().calls["oauth2.token"]).toBe(2);
  });

  it("a code lives ten minutes on the fake's clock", async () => {
    const { code, expiresAt } = fake.createAuthorizationCode();
    expect(expiresAt).toBe(now + 10 * 60_000);
    now += 10 * 60_000;
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code })).json.error_description).toBe("code_invalid_or_expired");
  });

  it("checks the redirect URI and the PKCE verifier; a refused check leaves the code usable", async () => {
    const v = verifier();
    const { code } = fake.createAuthorizationCode({ redirectUri: REDIRECT, codeChallenge: s256(v) });
    const refused = async (fields: Record<string, string>) => (await exchange(fake.url, { ...CONFIDENTIAL, code, ...fields })).json;
    expect(await refused({ redirect_uri: `${REDIRECT}/` })).toEqual({ error: "invalid_grant", error_description: "redirect_uri_mismatch" });
    expect(await refused({})).toEqual({ error: "invalid_grant", error_description: "invalid_code_verifier" });
    expect(await refused({ code_verifier: verifier() })).toEqual({ error: "invalid_grant", error_description: "invalid_code_verifier" });
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code, code_verifier: v })).status).toBe(200);
    expect(fake.stats()).toMatchObject({ codeExchanges: 1, rejectedCodes: 3 });
  });

  it("authenticates a confidential client by its secret, and refuses another client's code", async () => {
    const { code } = fake.createAuthorizationCode();
    const badSecret = await exchange(fake.url, { ...CONFIDENTIAL, client_secret: "nope", code });
    expect([badSecret.status, badSecret.json]).toEqual([401, { error: "invalid_client", error_description: "invalid_client_credentials" }]);
    const noSecret = await exchange(fake.url, { client_id: CONFIDENTIAL.client_id, code });
    expect(noSecret.status).toBe(401);
    const missing = await exchange(fake.url, CONFIDENTIAL);
    expect(missing.json).toEqual({ error: "invalid_request", error_description: "code is required" });
    const other = fake.createAuthorizationCode({ clientId: "fake-public-client", codeChallenge: s256(verifier()) });
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code: other.code })).json.error_description).toBe("client_id_mismatch");
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code })).status).toBe(200);
  });

  it("a public client has no secret: its codes carry PKCE, and it refreshes with client_id alone", async () => {
    expect(() => fake.createAuthorizationCode({ clientId: "fake-public-client" })).toThrow(/PKCE/);
    const v = verifier();
    const { code } = fake.createAuthorizationCode({ clientId: "fake-public-client", codeChallenge: s256(v), redirectUri: REDIRECT });
    expect((await exchange(fake.url, { ...PUBLIC, code })).json.error_description).toBe("invalid_code_verifier");
    const ok = await exchange(fake.url, { ...PUBLIC, code, code_verifier: v });
    expect(ok.status).toBe(200);
    const refreshed = await call(`${fake.url}/v2/auth/oauth2/token`, {
      body: { grant_type: "refresh_token", ...PUBLIC, refresh_token: ok.json.refresh_token },
    });
    expect(refreshed.status).toBe(200);
    expect(fake.stats()).toMatchObject({ codeExchanges: 1, oauth2Refreshes: 1 });
  });

  it("a fault before the commit leaves the code unspent; a reconnecting user keeps its Cal.com id", async () => {
    const first = fake.createAuthorizationCode();
    fake.faults.next("status503");
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code: first.code })).status).toBe(503);
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code: first.code })).status).toBe(200);
    const again = fake.createAuthorizationCode({ calUserId: first.calUserId });
    const ok = await exchange(fake.url, { ...CONFIDENTIAL, code: again.code });
    expect((await me(fake.url, ok.json.access_token)).json.data.id).toBe(first.calUserId);
  });

  it("of two concurrent exchanges of one code, only one gets a pair", async () => {
    const { code } = fake.createAuthorizationCode();
    fake.faults.latencyMs = 50;
    const answers = await Promise.all([exchange(fake.url, { ...CONFIDENTIAL, code }), exchange(fake.url, { ...CONFIDENTIAL, code })]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
  });

  it("mints codes over /__fake/authorization-codes", async () => {
    const v = verifier();
    const minted = await call(`${fake.url}/__fake/authorization-codes`, { body: { redirectUri: REDIRECT, codeChallenge: s256(v) } });
    expect(minted.status).toBe(201);
    expect(minted.json).toMatchObject({ code: expect.stringMatching(/^fake_code_/), calUserId: expect.any(Number) });
    expect((await exchange(fake.url, { ...CONFIDENTIAL, code: minted.json.code, code_verifier: v })).status).toBe(200);
    const bad = await call(`${fake.url}/__fake/authorization-codes`, { body: { clientId: "fake-public-client" } });
    expect(bad.status).toBe(400);
  });
});
