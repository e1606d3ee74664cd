import { startFakeCalcom } from "../../fakes/calcom/index.js";
import type { FakeCalcom } from "../../fakes/calcom/index.js";
import { SECRET, call, me, oauth2Refresh, refresh } from "./http.js";

describe("fake Cal.com: rate limits", () => {
  it("sends the three headers, 429s after the limit without Retry-After, and unblocks after blockMs", async () => {
    let t = Date.UTC(2025, 0, 1);
    const fake = await startFakeCalcom({ now: () => t, rateLimit: { limit: 3, windowMs: 10_000, blockMs: 7_000 } });
    try {
      const u = fake.createManagedUser();
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await me(fake.url, u.accessToken);
        expect(r.status).toBe(200);
        expect(r.headers.get("x-ratelimit-limit-default")).toBe("3");
        expect(r.headers.get("x-ratelimit-reset-default")).toBe("10");
        remaining.push(r.headers.get("x-ratelimit-remaining-default"));
      }
      expect(remaining).toEqual(["2", "1", "0"]);
      const limited = await me(fake.url, u.accessToken);
      expect(limited.status).toBe(429);
      expect(limited.json.error).toEqual({
        code: "ThrottlerException",
        message: "CustomThrottlerGuard - Too many requests. Please try again later.",
      });
      expect(limited.headers.get("retry-after")).toBeNull();
      expect(Number(limited.headers.get("x-ratelimit-reset-default"))).toBeGreaterThanOrEqual(7);
      expect(limited.headers.get("x-ratelimit-remaining-default")).toBe("0");
      // Another tracker (no bearer → IP bucket) is unaffected.
      expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
      t += 6_999;
      expect((await me(fake.url, u.accessToken)).status).toBe(429);
      t += 1;
      const after = await me(fake.url, u.accessToken);
      expect(after.status).toBe(200);
      expect(after.headers.get("x-ratelimit-remaining-default")).toBe("2");
      expect(fake.stats().status429).toBe(2);
    } finally {
      await fake.close();
    }
  });

  it("uses Cal.com's default limits per tracker kind, and can be disabled", async () => {
    const fake = await startFakeCalcom();
    const off = await startFakeCalcom({ rateLimit: false });
    try {
      const u = fake.createManagedUser();
      expect((await me(fake.url, u.accessToken)).headers.get("x-ratelimit-limit-default")).toBe("500");
      const byIp = await refresh(fake.url, u.refreshToken);
      expect(byIp.headers.get("x-ratelimit-limit-default")).toBe("120");
      const byClient = await refresh(fake.url, byIp.json.data.refreshToken, { ...SECRET, "x-cal-client-id": "fake-client" });
      expect(byClient.headers.get("x-ratelimit-limit-default")).toBe("500");
      expect((await me(off.url, off.createManagedUser().accessToken)).headers.get("x-ratelimit-limit-default")).toBeNull();
    } finally {
      await Promise.all([fake.close(), off.close()]);
    }
  });
});

describe("fake Cal.com: faults on token endpoints", () => {
  let fake: FakeCalcom;
  beforeAll(async () => {
    fake = await startFakeCalcom();
  });
  afterAll(() => fake.close());
  afterEach(() => fake.faults.clear());

  it.each(["status500", "status503"] as const)("%s answers an error envelope and does not rotate", async (fault) => {
    const u = fake.createManagedUser();
    fake.faults.next(fault);
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(fault === "status500" ? 500 : 503);
    expect(r.json.status).toBe("error");
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  });

  it("html502 answers text/html and does not rotate", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("html502");
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(502);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    expect(r.text).toContain("<html>");
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
  });

  it("malformedJson commits the rotation and sends an unparseable 200", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("malformedJson");
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(200);
    expect(r.json).toBeUndefined();
    expect(r.text).not.toContain("fake_");
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(400);
  });

  it("wrongShape commits the rotation and omits the access token", async () => {
    const g = fake.createOAuth2Grant();
    fake.faults.next("wrongShape");
    const r = await oauth2Refresh(fake.url, g.refreshToken);
    expect(r.status).toBe(200);
    expect(r.json.access_token).toBeUndefined();
    expect(r.json.refresh_token).toMatch(/^fake_ort_/);
    expect(fake.isRefreshTokenLive(g.refreshToken)).toBe(false);
  });

  it("dropAfterCommit kills the socket after committing", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("dropAfterCommit");
    await expect(refresh(fake.url, u.refreshToken)).rejects.toThrow();
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
    expect(fake.stats().refreshes).toBeGreaterThanOrEqual(1);
    const forced = await call(`${fake.url}/v2/oauth-clients/fake-client/users/${u.calUserId}/force-refresh`, {
      method: "POST",
      headers: SECRET,
    });
    expect(forced.status).toBe(200);
  });

  it("hangAfterCommit commits and never answers", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("hangAfterCommit");
    await expect(
      call(`${fake.url}/v2/oauth/fake-client/refresh`, {
        body: { refreshToken: u.refreshToken },
        headers: SECRET,
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow();
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
  });

  it("rateLimit answers 429 with the limiter's headers", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("rateLimit");
    const r = await refresh(fake.url, u.refreshToken);
    expect(r.status).toBe(429);
    expect(r.json.error.code).toBe("ThrottlerException");
    expect(r.headers.get("x-ratelimit-remaining-default")).toBe("0");
    expect(Number(r.headers.get("x-ratelimit-reset-default"))).toBeGreaterThanOrEqual(60);
    expect(r.headers.get("retry-after")).toBeNull();
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);
  });

  it("queues `next` faults, keeps `always` until cleared, and never faults /v2/me", async () => {
    const u = fake.createManagedUser();
    fake.faults.next("status500", 2);
    fake.faults.always("status503");
    expect((await me(fake.url, u.accessToken)).status).toBe(200);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await refresh(fake.url, u.refreshToken)).status);
    expect(statuses).toEqual([500, 500, 503]);
    fake.faults.always(null);
    expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  });
});

describe("fake Cal.com: hang", () => {
  it("does not rotate, and close() still returns promptly with a request pending", async () => {
    const fake = await startFakeCalcom();
    const u = fake.createManagedUser();
    fake.faults.always("hang");
    await expect(
      call(`${fake.url}/v2/oauth/fake-client/refresh`, {
        body: { refreshToken: u.refreshToken },
        headers: SECRET,
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow();
    expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(true);

    const pending = refresh(fake.url, u.refreshToken);
    const settled = pending.then(
      () => "answered",
      () => "failed",
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await fake.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await settled).toBe("failed");
  });
});
