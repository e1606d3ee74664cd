import { startHarness, type Harness } from "../../support/harness.js";

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

const me = (accessToken: string) => fetch(`${h.fake.url}/v2/me`, { headers: { authorization: `Bearer ${accessToken}` } });

describe("handleCalApiResponse", () => {
  it("498 → one refresh, one replay with the new token", async () => {
    const u = await h.seedManaged();
    h.fake.expireAccessToken(u.accessToken); // Cal.com's view; our row still thinks it is valid
    const first = await me(u.accessToken);
    expect(first.status).toBe(498);
    const used: string[] = [];
    const res = await h.client.handleCalApiResponse(
      first,
      (t) => {
        used.push(t);
        return me(t);
      },
      u.userUlid,
    );
    expect(res.status).toBe(200);
    expect(used).toHaveLength(1);
    expect(used[0]).not.toBe(u.accessToken);
    expect(h.fake.stats().refreshes).toBe(1);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row.version).toBe(2);
  });

  it("a second 498 is returned to the caller, not looped", async () => {
    const u = await h.seedManaged();
    h.fake.expireAccessToken(u.accessToken);
    const first = await me(u.accessToken);
    let replays = 0;
    const res = await h.client.handleCalApiResponse(
      first,
      async () => {
        replays += 1;
        return new Response('{"status":"error","error":{"code":"TokenExpiredException","message":"ACCESS_TOKEN_IS_EXPIRED"}}', {
          status: 498,
        });
      },
      u.userUlid,
    );
    expect(res.status).toBe(498);
    expect(replays).toBe(1);
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("401 'Invalid Access Token.' (an expired token purged by another user's refresh) behaves the same", async () => {
    const a = await h.seedManaged();
    const b = await h.seedManaged({ ttlMs: 1_000 });
    h.fake.expireAccessToken(a.accessToken);
    await new Promise((r) => setTimeout(r, 1_100));
    await h.client.ensureValidCalToken(b.userUlid); // B's refresh purges every expired access token of the client
    h.fake.resetStats();
    const first = await me(a.accessToken);
    expect(first.status).toBe(401);
    const res = await h.client.handleCalApiResponse(first, me, a.userUlid);
    expect(res.status).toBe(200);
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("does not refresh when the stored token already moved past the one that failed", async () => {
    const u = await h.seedManaged();
    const other = h.newClient(); // another dyno refreshes first
    const moved = await other.ensureValidCalToken(u.userUlid, true);
    expect(moved.refreshed).toBe(true);
    h.fake.resetStats();
    const used: string[] = [];
    const stale = new Response("{}", { status: 498 });
    const res = await h.client.handleCalApiResponse(
      stale,
      (t) => {
        used.push(t);
        return me(t);
      },
      u.userUlid,
      { accessToken: u.accessToken },
    );
    expect(res.status).toBe(200);
    expect(used).toEqual([moved.tokenInfo!.accessToken]);
    expect(h.fake.stats().refreshes).toBe(0);
  });

  it("without being told the token, matches the last one this client handed out", async () => {
    const u = await h.seedManaged();
    const handed = await h.client.ensureValidCalToken(u.userUlid);
    await h.newClient().ensureValidCalToken(u.userUlid, true); // rotated elsewhere
    h.fake.resetStats();
    expect(handed.tokenInfo!.accessToken).toBe(u.accessToken);
    const res = await h.client.handleCalApiResponse(new Response("{}", { status: 498 }), me, u.userUlid);
    expect(res.status).toBe(200);
    expect(h.fake.stats().refreshes).toBe(0);
  });

  it("30 concurrent 498s for one user cause one refresh", async () => {
    const u = await h.seedManaged();
    h.fake.expireAccessToken(u.accessToken);
    h.fake.faults.latencyMs = 100;
    const results = await Promise.all(
      Array.from({ length: 30 }, async () =>
        h.client.handleCalApiResponse(await me(u.accessToken), me, u.userUlid, { accessToken: u.accessToken }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(h.fake.stats().refreshes).toBe(1);
  });

  it("passes other responses through untouched", async () => {
    const u = await h.seedManaged();
    const ok = await me(u.accessToken);
    expect(await h.client.handleCalApiResponse(ok, me, u.userUlid)).toBe(ok);
    const unauthorised = new Response('{"error":{"message":"ApiAuthStrategy - oAuth client - Invalid client secret"}}', { status: 401 });
    expect(await h.client.handleCalApiResponse(unauthorised, me, u.userUlid)).toBe(unauthorised);
    expect(h.fake.stats().refreshes).toBe(0);
  });

  it("returns the original 498 when no refresh is possible", async () => {
    const u = await h.seedOAuth2();
    h.fake.faults.next("status503");
    await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1000) } });
    const original = new Response("{}", { status: 498 });
    let replays = 0;
    const res = await h.client.handleCalApiResponse(
      original,
      async (t) => {
        replays++;
        return me(t);
      },
      u.userUlid,
    );
    expect(res).toBe(original);
    expect(replays).toBe(0);
  });
});
