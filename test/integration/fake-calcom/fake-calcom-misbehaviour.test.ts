/** The fake's misbehaviours: route-level 404s, odd 2xx bodies, 5xx storms, and the client-id bucket. */
import { ODD_EXPIRY_FAULTS, startFakeCalcom } from "../../fakes/calcom/index.js";
import type { FakeCalcom } from "../../fakes/calcom/index.js";
import { SECRET, call, me, oauth2Refresh, refresh } from "./http.js";

const T0 = Date.UTC(2025, 5, 15, 12, 0, 0);
let t = T0;
let fake: FakeCalcom;
beforeEach(async () => {
  t = T0;
  fake = await startFakeCalcom({ now: () => t });
});
afterEach(() => fake.close());

const forceRefresh = (userId: number) =>
  call(`${fake.url}/v2/oauth-clients/fake-client/users/${userId}/force-refresh`, { method: "POST", headers: SECRET });

describe("route-level 404", () => {
  it.each([
    ["POST", "/v2/v2/oauth/fake-client/refresh"],
    ["POST", "/v2/v2/oauth-clients/fake-client/users/1001/force-refresh"],
    ["POST", "/v2/v2/auth/oauth2/token"],
    ["POST", "/oauth/fake-client/refresh"],
    ["GET", "/v2/oauth/fake-client/refresh"],
  ])("%s %s: Nest's envelope, before throttling and auth, counted apart", async (method, path) => {
    const u = fake.createManagedUser();
    const r = await call(`${fake.url}${path}`, {
      method,
      headers: SECRET,
      ...(method === "POST" ? { body: { refreshToken: u.refreshToken } } : {}),
    });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      status: "error",
      timestamp: new Date(T0).toISOString(),
      path,
      error: { code: "NotFoundException", message: `Cannot ${method} ${path}` },
    });
    expect(r.headers.get("x-request-id")).toBeTruthy();
    expect(r.headers.get("x-ratelimit-limit-default")).toBeNull();
    const stats = fake.stats();
    expect(stats.routeNotFound).toBe(1);
    expect(Object.values(stats.calls).every((n) => n === 0)).toBe(true);
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
  });
});

describe("odd expiries: a real rotation, the expiry in another form", () => {
  it.each(ODD_EXPIRY_FAULTS)("managed %s", async (fault) => {
    const u = fake.createManagedUser();
    fake.faults.next(fault);
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(200);
    const data = r.json.data;
    const exp = Math.floor((T0 + 3_600_000) / 60_000) * 60_000;
    const expected: Record<string, unknown> = {
      expiryEpochSeconds: exp / 1000,
      expiryIso: new Date(exp).toISOString(),
      expiryNumericString: String(exp),
      expiryMissing: undefined,
      expiryAbsurdFuture: T0 + 365 * 86_400_000,
      expiryAbsurdPast: T0 - 3_600_000,
    };
    expect(data.accessTokenExpiresAt).toEqual(expected[fault]);
    expect(typeof data.refreshTokenExpiresAt).toBe("number");
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
    expect(fake.isRefreshTokenLive(data.refreshToken)).toBe(true);
    expect((await me(fake.url, data.accessToken)).status).toBe(200);
  });

  it.each(ODD_EXPIRY_FAULTS)("force-refresh %s also answers with the real pair", async (fault) => {
    const u = fake.createManagedUser();
    fake.faults.next(fault);
    const r = await forceRefresh(u.calUserId);
    expect(r.status).toBe(200);
    expect(fake.isRefreshTokenLive(r.json.data.refreshToken)).toBe(true);
    expect(fake.stats().forceRefreshes).toBe(1);
  });

  it.each(ODD_EXPIRY_FAULTS)("OAuth2 %s", async (fault) => {
    const g = fake.createOAuth2Grant();
    fake.faults.next(fault);
    const r = await oauth2Refresh(fake.url, g.refreshToken);
    expect(r.status).toBe(200);
    const expSeconds = (T0 + 1_800_000) / 1000;
    const expected: Record<string, [unknown, unknown]> = {
      expiryEpochSeconds: [undefined, expSeconds],
      expiryIso: [undefined, new Date(T0 + 1_800_000).toISOString()],
      expiryNumericString: ["1800", undefined],
      expiryMissing: [undefined, undefined],
      expiryAbsurdFuture: [315_360_000, undefined],
      expiryAbsurdPast: [-60, undefined],
    };
    expect([r.json.expires_in, r.json.expires_at]).toEqual(expected[fault]);
    expect(fake.isRefreshTokenLive(g.refreshToken)).toBe(false);
    expect(fake.isRefreshTokenLive(r.json.refresh_token)).toBe(true);
  });

  it("noRefreshToken commits and leaves the new refresh token out", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("noRefreshToken");
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(200);
    expect(r.json.data.refreshToken).toBeUndefined();
    expect(r.json.data.accessToken).toMatch(/^fake_at_/);
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
  });
});

describe("5xx storm", () => {
  it.each([
    [500, "application/json", false],
    [503, "application/json", false],
    [502, "text/html", true],
    [504, "text/html", true],
  ] as const)("%i: every token endpoint answers it until the storm ends; nothing rotates", async (status, type, html) => {
    const u = fake.createManagedUser();
    const g = fake.createOAuth2Grant();
    fake.faults.storm({ durationMs: 10_000, status });
    for (const r of [
      await refresh(fake.url, u.refreshToken),
      await forceRefresh(u.calUserId),
      await oauth2Refresh(fake.url, g.refreshToken),
    ]) {
      expect(r.status).toBe(status);
      expect(r.headers.get("content-type")).toContain(type);
      expect(r.text.includes("<html>")).toBe(html);
    }
    expect((await me(fake.url, u.accessToken)).status).toBe(200);
    t += 9_999;
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(status);
    t += 1;
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
    expect((await oauth2Refresh(fake.url, g.refreshToken)).status).toBe(200);
  });

  it("commitFraction: that share of calls commits, then a gateway 504; spread evenly", async () => {
    fake.faults.storm({ durationMs: 60_000, status: 503, commitFraction: 1 / 3 });
    const seen: [number, boolean][] = [];
    for (let i = 0; i < 6; i++) {
      const u = fake.createManagedUser();
      const r = await refresh(fake.url, u.refreshToken);
      seen.push([r.status, fake.isRefreshTokenLive(u.refreshToken)]);
    }
    const committed: [number, boolean] = [504, false];
    const refused: [number, boolean] = [503, true];
    expect(seen).toEqual([refused, refused, committed, refused, refused, committed]);
    expect(fake.stats().refreshes).toBe(2);
  });

  it("queued faults win over a storm, a storm over `always`; clear() ends it", async () => {
    const u = fake.createManagedUser();
    fake.faults.always("html502");
    fake.faults.storm({ durationMs: 10_000, status: 500 });
    fake.faults.next("rateLimit");
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(429);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(500);
    t += 10_000;
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(502);
    fake.faults.storm({ durationMs: 10_000 });
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(503);
    fake.faults.clear();
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  });

  it("is set over the control route, which refuses bad options", async () => {
    const u = fake.createManagedUser();
    const set = (storm: unknown) => call(`${fake.url}/__fake/faults`, { body: { storm } });
    for (const bad of [{}, { durationMs: -1 }, { durationMs: 10, status: 404 }, { durationMs: 10, commitFraction: 2 }, "soon"]) {
      expect((await set(bad)).status).toBe(400);
    }
    expect((await set({ durationMs: 5_000, status: 502 })).status).toBe(200);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(502);
    expect((await set(null)).status).toBe(200);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  });
});

describe("x-cal-client-id bucket", () => {
  it("a platform client gets the client limit; any other id (an OAuth2 app) its own bucket at the default limit", async () => {
    const g = fake.createOAuth2Grant();
    const platform = await refresh(fake.url, "unknown", { ...SECRET, "x-cal-client-id": "fake-client" });
    expect(platform.headers.get("x-ratelimit-limit-default")).toBe("500");
    const oauthApp = await call(`${fake.url}/v2/auth/oauth2/token`, {
      headers: { "x-cal-client-id": "fake-oauth-client" },
      body: {
        grant_type: "refresh_token",
        client_id: "fake-oauth-client",
        client_secret: "fake-oauth-secret",
        refresh_token: g.refreshToken,
      },
    });
    expect(oauthApp.status).toBe(200);
    expect(oauthApp.headers.get("x-ratelimit-limit-default")).toBe("120");
    expect(oauthApp.headers.get("x-ratelimit-remaining-default")).toBe("119");
    // The IP bucket is another one: its count starts afresh.
    const byIp = await oauth2Refresh(fake.url, oauthApp.json.refresh_token);
    expect(byIp.headers.get("x-ratelimit-remaining-default")).toBe("119");
  });
});
