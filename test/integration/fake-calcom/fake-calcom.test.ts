import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeCalcom } from "../../fakes/calcom/index.js";
import type { FakeCalcom } from "../../fakes/calcom/index.js";
import { SECRET, call, me, oauth2Refresh, refresh } from "./http.js";

describe("fake Cal.com: managed users", () => {
  let fake: FakeCalcom;
  beforeAll(async () => {
    fake = await startFakeCalcom();
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.resetStats());

  it("rotates strictly: the old refresh token is dead, the old access token still works", async () => {
    const u = fake.createManagedUser();
    const first = await refresh(fake.url, u.refreshToken);
    expect(first.status).toBe(200);
    expect(first.json.status).toBe("success");
    expect(Object.keys(first.json.data).sort()).toEqual(["accessToken", "accessTokenExpiresAt", "refreshToken", "refreshTokenExpiresAt"]);
    expect(first.json.data.accessToken).toMatch(/^fake_at_/);
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
    expect(fake.isRefreshTokenLive(first.json.data.refreshToken)).toBe(true);

    const reuse = await refresh(fake.url, u.refreshToken);
    expect(reuse.status).toBe(400);
    expect(reuse.json.error).toEqual({ code: "BadRequestException", message: "Invalid refresh token" });
    expect(reuse.headers.get("x-request-id")).toBe("unknown-request-id");
    expect(reuse.json.path).toBe("/v2/oauth/fake-client/refresh");

    expect((await me(fake.url, u.accessToken)).status).toBe(200);
    const fresh = await me(fake.url, first.json.data.accessToken);
    expect(fresh.json.data.id).toBe(u.calUserId);

    const unknown = await refresh(fake.url, "fake_rt_never-issued");
    expect(unknown.status).toBe(400);
    const stats = fake.stats();
    expect(stats).toMatchObject({ refreshes: 1, deadRefreshTokenUses: 1, unknownRefreshTokenUses: 1 });
    expect(stats.calls["managed.refresh"]).toBe(3);
    expect(stats.calls.me).toBe(2);
  });

  it("answers 498 for an expired access token, 401 for an unknown one", async () => {
    const u = fake.createManagedUser();
    fake.expireAccessToken(u.accessToken);
    const expired = await me(fake.url, u.accessToken);
    expect(expired.status).toBe(498);
    expect(expired.json.error).toEqual({ code: "TokenExpiredException", message: "ACCESS_TOKEN_IS_EXPIRED" });
    const unknown = await call(`${fake.url}/v2/calendars`, { headers: { authorization: "Bearer nope" } });
    expect(unknown.status).toBe(401);
    expect(unknown.json.error.message).toBe("Invalid Access Token.");
    expect(fake.stats()).toMatchObject({ status498: 1, status401: 1 });
  });

  it("reproduces the purge quirk: another user's refresh turns an expired token's 498 into 401", async () => {
    const a = fake.createManagedUser();
    const b = fake.createManagedUser();
    fake.expireAccessToken(a.accessToken);
    expect((await me(fake.url, a.accessToken)).status).toBe(498);
    expect((await refresh(fake.url, b.refreshToken)).status).toBe(200);
    const after = await me(fake.url, a.accessToken);
    expect(after.status).toBe(401);
    expect(after.json.error).toEqual({ code: "UnauthorizedException", message: "Invalid Access Token." });
  });

  it("force-refresh kills every token of the user and only that user", async () => {
    const u = fake.createManagedUser();
    const other = fake.createManagedUser();
    const rotated = await refresh(fake.url, u.refreshToken);
    const url = `${fake.url}/v2/oauth-clients/fake-client/users/${u.calUserId}/force-refresh`;
    const forced = await call(url, { method: "POST", headers: SECRET });
    expect(forced.status).toBe(200);
    expect(forced.json.data.accessToken).toMatch(/^fake_at_/);
    for (const at of [u.accessToken, rotated.json.data.accessToken]) {
      expect(fake.isAccessTokenValid(at)).toBe(false);
      expect((await me(fake.url, at)).status).toBe(401);
    }
    expect((await refresh(fake.url, rotated.json.data.refreshToken)).status).toBe(400);
    expect((await me(fake.url, forced.json.data.accessToken)).status).toBe(200);
    expect((await refresh(fake.url, forced.json.data.refreshToken)).status).toBe(200);
    expect((await me(fake.url, other.accessToken)).status).toBe(200);
    expect(fake.stats().forceRefreshes).toBe(1);

    const bad = await call(`${fake.url}/v2/oauth-clients/fake-client/users/abc/force-refresh`, { method: "POST", headers: SECRET });
    expect(bad.status).toBe(400);
    const stranger = await call(`${fake.url}/v2/oauth-clients/fake-client/users/999999/force-refresh`, { method: "POST", headers: SECRET });
    expect(stranger.status).toBe(404);
    expect(stranger.json.error.message).toBe("User with ID 999999 is not part of this OAuth client.");
  });

  it("lets the second of two concurrent refreshes with the same token lose with 404", async () => {
    const u = fake.createManagedUser();
    fake.faults.latencyMs = 150;
    try {
      const results = await Promise.all([refresh(fake.url, u.refreshToken), refresh(fake.url, u.refreshToken)]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 404]);
      const lost = results.find((r) => r.status === 404);
      expect(lost?.json.error).toEqual({ code: "NOT_FOUND", message: "Invalid Query: The requested record was not found." });
      expect(fake.stats().refreshes).toBe(1);
    } finally {
      fake.faults.clear();
    }
  });

  it("answers auth errors exactly like ApiAuthStrategy", async () => {
    const u = fake.createManagedUser();
    const wrong = await refresh(fake.url, u.refreshToken, { "x-cal-secret-key": "nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toEqual({ code: "UnauthorizedException", message: "ApiAuthStrategy - oAuth client - Invalid client secret" });
    const missing = await refresh(fake.url, u.refreshToken, { "x-cal-client-id": "fake-client" });
    expect(missing.json.error.message).toMatch(/^ApiAuthStrategy - Only 'x-cal-client-id' header provided/);
    const unknownClient = await call(`${fake.url}/v2/oauth/ghost/refresh`, { body: { refreshToken: u.refreshToken }, headers: SECRET });
    expect(unknownClient.json.error.message).toBe("ApiAuthStrategy - oAuth client - Client with ID ghost not found");
    expect((await refresh(fake.url, 42)).status).toBe(400);
    expect((await call(`${fake.url}/v2/oauth/fake-client/refresh`, { method: "POST", headers: SECRET })).status).toBe(400);
    const noAuth = await call(`${fake.url}/v2/me`);
    expect(noAuth.json.error.message).toMatch(/^ApiAuthStrategy - No authentication method provided\./);
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
  });

  it("creates managed users over HTTP with 201 and a working pair", async () => {
    const created = await call(`${fake.url}/v2/oauth-clients/fake-client/users`, { body: { email: "bob@example.com" }, headers: SECRET });
    expect(created.status).toBe(201);
    expect(created.json.data.user.email).toBe("bob+fake-client@example.com");
    expect((await me(fake.url, created.json.data.accessToken)).status).toBe(200);
    const again = await call(`${fake.url}/v2/oauth-clients/fake-client/users`, { body: { email: "bob@example.com" }, headers: SECRET });
    expect(again.status).toBe(409);
  });
});

describe("fake Cal.com: token lifetimes", () => {
  it("floors AT expiry to the minute and RT expiry to the day; an explicit TTL is exact", async () => {
    const t = Date.UTC(2025, 0, 15, 10, 20, 30, 500);
    const fake = await startFakeCalcom({ now: () => t });
    try {
      const u = fake.createManagedUser();
      expect(u.accessTokenExpiresAt).toBe(Date.UTC(2025, 0, 15, 11, 20));
      expect(u.refreshTokenExpiresAt).toBe(Date.UTC(2026, 0, 15));
      expect(fake.createManagedUser({ accessTokenTtlMs: 2000 }).accessTokenExpiresAt).toBe(t + 2000);
      fake.setAccessTokenTtlMs(5000);
      expect(fake.createManagedUser().accessTokenExpiresAt).toBe(t + 5000);
      expect(fake.createOAuth2Grant()).toMatchObject({ expiresIn: 1800, accessTokenExpiresAt: t + 1_800_000 });
    } finally {
      await fake.close();
    }
  });

  it("expires tokens by the injected clock and records every issued token", async () => {
    let t = Date.UTC(2025, 0, 1);
    const file = join(mkdtempSync(join(tmpdir(), "fake-calcom-")), "tokens.txt");
    const fake = await startFakeCalcom({ now: () => t, accessTokenTtlMs: 2000, issuedTokensFile: file });
    try {
      const u = fake.createManagedUser();
      expect((await me(fake.url, u.accessToken)).status).toBe(200);
      t += 2000;
      expect((await me(fake.url, u.accessToken)).status).toBe(498);
      const lines = readFileSync(file, "utf8").trim().split("\n");
      expect(lines).toEqual([u.accessToken, u.refreshToken]);
      expect(lines.every((l) => !l.startsWith("cal_"))).toBe(true);
    } finally {
      await fake.close();
    }
  });
});

describe("fake Cal.com: OAuth 2.0", () => {
  let fake: FakeCalcom;
  beforeAll(async () => {
    fake = await startFakeCalcom();
  });
  afterAll(() => fake.close());

  it("rotates on refresh and rejects reuse with invalid_grant", async () => {
    const g = fake.createOAuth2Grant();
    expect((await me(fake.url, g.accessToken)).json.data.id).toBe(g.calUserId);
    const ok = await oauth2Refresh(fake.url, g.refreshToken);
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({
      access_token: expect.stringMatching(/^fake_oat_/),
      token_type: "bearer",
      refresh_token: expect.stringMatching(/^fake_ort_/),
      expires_in: 1800,
    });
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(ok.headers.get("pragma")).toBe("no-cache");
    const reuse = await oauth2Refresh(fake.url, g.refreshToken);
    expect(reuse.status).toBe(400);
    expect(reuse.json).toEqual({ error: "invalid_grant", error_description: "refresh_token_revoked" });
    expect(fake.stats()).toMatchObject({ oauth2Refreshes: 1, deadRefreshTokenUses: 1 });
    const form = await call(`${fake.url}/v2/auth/oauth2/token`, {
      form: {
        grant_type: "refresh_token",
        client_id: "fake-oauth-client",
        client_secret: "fake-oauth-secret",
        refresh_token: ok.json.refresh_token,
      },
    });
    expect(form.status).toBe(200);
  });

  it("answers the RFC error bodies", async () => {
    const g = fake.createOAuth2Grant();
    expect((await oauth2Refresh(fake.url, "fake_ort_unknown")).json).toEqual({
      error: "invalid_grant",
      error_description: "invalid_refresh_token",
    });
    const noClient = await call(`${fake.url}/v2/auth/oauth2/token`, {
      body: { grant_type: "refresh_token", refresh_token: g.refreshToken },
    });
    expect(noClient.status).toBe(400);
    expect(noClient.json).toEqual({ error: "invalid_request", error_description: "client_id is required" });
    const badSecret = await oauth2Refresh(fake.url, g.refreshToken, { client_secret: "nope" });
    expect(badSecret.status).toBe(401);
    expect(badSecret.json).toEqual({ error: "invalid_client", error_description: "invalid_client_credentials" });
    expect(fake.isRefreshTokenLive(g.refreshToken)).toBe(true);
  });

  it("rejects another client's refresh token with client_id_mismatch", async () => {
    const other = await startFakeCalcom({
      oauth2Clients: [
        { id: "a", secret: "sa" },
        { id: "b", secret: "sb" },
      ],
    });
    try {
      const g = other.createOAuth2Grant({ clientId: "a" });
      const res = await oauth2Refresh(other.url, g.refreshToken, { client_id: "b", client_secret: "sb" });
      expect(res.json).toEqual({ error: "invalid_grant", error_description: "client_id_mismatch" });
    } finally {
      await other.close();
    }
  });
});

describe("fake Cal.com: /__fake control endpoints", () => {
  let fake: FakeCalcom;
  beforeAll(async () => {
    fake = await startFakeCalcom({ rateLimit: { limit: 1, windowMs: 60_000, blockMs: 60_000 } });
  });
  afterAll(() => fake.close());

  it("seeds, sets faults and TTL, reports and resets stats, without counting or rate limiting", async () => {
    const seeded = await call(`${fake.url}/__fake/managed-users`, { body: { accessTokenTtlMs: 2000 } });
    expect(seeded.status).toBe(201);
    expect(seeded.json.accessTokenExpiresAt - Date.now()).toBeLessThanOrEqual(2000);
    const grant = await call(`${fake.url}/__fake/oauth2-grants`, { body: {} });
    expect(grant.json).toMatchObject({ expiresIn: 1800, refreshToken: expect.stringMatching(/^fake_ort_/) });
    expect((await call(`${fake.url}/__fake/ttl`, { body: { accessTokenTtlMs: 3000 } })).status).toBe(200);
    expect(fake.createManagedUser().accessTokenExpiresAt - Date.now()).toBeLessThanOrEqual(3000);

    expect((await call(`${fake.url}/__fake/faults`, { body: { next: { fault: "status503", times: 1 }, latencyMs: 5 } })).status).toBe(200);
    expect(fake.faults.latencyMs).toBe(5);
    expect((await call(`${fake.url}/__fake/faults`, { body: { always: "bogus" } })).status).toBe(400);
    expect((await refresh(fake.url, seeded.json.refreshToken)).status).toBe(503);
    await call(`${fake.url}/__fake/faults`, { body: { clear: true } });
    expect(fake.faults.latencyMs).toBe(0);

    const stats = await call(`${fake.url}/__fake/stats`);
    expect(stats.json.calls["managed.refresh"]).toBe(1);
    expect(stats.json.status429).toBe(0);
    expect((await call(`${fake.url}/__fake/reset-stats`, { method: "POST" })).status).toBe(200);
    expect(fake.stats().calls["managed.refresh"]).toBe(0);
  });
});
