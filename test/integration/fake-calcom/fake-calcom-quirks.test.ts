import { startFakeCalcom } from "../../fakes/calcom/index.js";
import type { FakeCalcom } from "../../fakes/calcom/index.js";
import { SECRET, call, me, oauth2Refresh } from "./http.js";

/** Less obvious Cal.com behaviours the fake reproduces on purpose (docs/calcom-api.md#what-the-fake-calcom-models). */
describe("fake Cal.com: quirks", () => {
  let fake: FakeCalcom;
  beforeAll(async () => {
    fake = await startFakeCalcom();
  });
  afterAll(() => fake.close());
  afterEach(() => fake.faults.clear());

  it("a token cached as valid, then force-refreshed away, fails the client lookup instead", async () => {
    const u = fake.createManagedUser();
    expect((await me(fake.url, u.accessToken)).status).toBe(200); // now in the validated-token cache
    const forced = await call(`${fake.url}/v2/oauth-clients/fake-client/users/${u.calUserId}/force-refresh`, {
      method: "POST",
      headers: SECRET,
    });
    expect(forced.status).toBe(200);
    const after = await me(fake.url, u.accessToken);
    expect(after.status).toBe(401);
    expect(after.json.error.message).toBe("ApiAuthStrategy - access token - OAuth client not found given the access token");
  });

  it("two concurrent OAuth 2.0 refreshes both succeed, and the later one revokes the earlier's new token", async () => {
    const g = fake.createOAuth2Grant();
    fake.faults.latencyMs = 100;
    const first = oauth2Refresh(fake.url, g.refreshToken);
    await new Promise((r) => setTimeout(r, 30));
    const second = oauth2Refresh(fake.url, g.refreshToken);
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(fake.isRefreshTokenLive(a.json.refresh_token)).toBe(false);
    expect(fake.isRefreshTokenLive(b.json.refresh_token)).toBe(true);
    expect(fake.stats().oauth2Refreshes).toBeGreaterThanOrEqual(2);
  });

  it("expired OAuth 2.0 access tokens are plain 401s (JWTs, no 498 path)", async () => {
    const g = fake.createOAuth2Grant();
    fake.expireAccessToken(g.accessToken);
    const r = await me(fake.url, g.accessToken);
    expect(r.status).toBe(401);
    expect(r.json.error.message).toBe("Invalid Access Token.");
  });

  it("rejects unknown routes with Nest's 404, quoting the original URL, and counts them apart", async () => {
    const before = fake.stats();
    const r = await call(`${fake.url}/v2/nope?x=1`);
    expect(r.status).toBe(404);
    expect(r.json.error).toEqual({ code: "NotFoundException", message: "Cannot GET /v2/nope?x=1" });
    expect(r.json.path).toBe("/v2/nope?x=1");
    expect(fake.stats().calls).toEqual(before.calls);
    expect(fake.stats().routeNotFound).toBe(before.routeNotFound + 1);
  });
});
