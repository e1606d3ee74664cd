/**
 * What the fake reports about each token call (`onTokenCall`, and the stats rotationsDroppedByFault and
 * rotationsUndeliverable): whether a rotation was committed or a dead refresh token presented, and whether
 * the answer reached the caller. Also the unreachable switch. The chaos soak (scripts/soak) measures lost
 * rotations with these instead of assuming them.
 */
import { startFakeCalcom, type FakeCalcom, type TokenCallRecord } from "../../fakes/calcom/index.js";
import { SECRET, call, oauth2Refresh, refresh } from "./http.js";

let fake: FakeCalcom;
const calls: TokenCallRecord[] = [];
beforeAll(async () => {
  fake = await startFakeCalcom({ rateLimit: false, onTokenCall: (c) => calls.push(c) });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.faults.clear();
  fake.setReachable(true);
  fake.resetStats();
  calls.length = 0;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Delivered answers are reported a second after they were written. */
const reported = async (n: number) => {
  for (let i = 0; i < 60 && calls.length < n; i++) await sleep(50);
  return calls;
};

it("a delivered rotation is reported delivered and counted as nothing lost", async () => {
  const u = fake.createManagedUser();
  expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  expect(await reported(1)).toEqual([
    {
      route: "managed.refresh",
      calUserId: u.calUserId,
      arrivedAt: expect.any(Number),
      answeredAt: expect.any(Number),
      outcome: "rotated",
      delivery: "delivered",
      remotePort: expect.any(Number),
    },
  ]);
  expect(fake.stats()).toMatchObject({ refreshes: 1, rotationsDroppedByFault: 0, rotationsUndeliverable: 0 });
});

it("dropAfterCommit and a storm's 504 after commit: rotations withheld by a fault", async () => {
  const u = fake.createManagedUser();
  fake.faults.next("dropAfterCommit");
  await expect(refresh(fake.url, u.refreshToken)).rejects.toThrow();
  expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
  const g = fake.createOAuth2Grant();
  fake.faults.storm({ durationMs: 60_000, commitFraction: 1 });
  expect((await oauth2Refresh(fake.url, g.refreshToken)).status).toBe(504);
  expect(await reported(2)).toMatchObject([
    { route: "managed.refresh", calUserId: u.calUserId, outcome: "rotated", delivery: "withheld", fault: "dropAfterCommit" },
    { route: "oauth2.token", calUserId: g.calUserId, outcome: "rotated", delivery: "withheld", fault: "storm504" },
  ]);
  expect(fake.stats()).toMatchObject({ rotationsDroppedByFault: 2, rotationsUndeliverable: 0 });
});

it("a caller that hung up before the answer: the rotation commits and is undeliverable", async () => {
  const u = fake.createManagedUser();
  fake.faults.latencyMs = 300;
  const gaveUp = call(`${fake.url}/v2/oauth-clients/fake-client/users/${u.calUserId}/force-refresh`, {
    method: "POST",
    headers: SECRET,
    signal: AbortSignal.timeout(100),
  });
  await expect(gaveUp).rejects.toThrow();
  expect(await reported(1)).toMatchObject([
    { route: "managed.forceRefresh", calUserId: u.calUserId, outcome: "rotated", delivery: "gone" },
  ]);
  expect(fake.stats()).toMatchObject({ forceRefreshes: 1, rotationsUndeliverable: 1 });
});

it("a dead refresh token is reported with its user; a refused call rotates nothing and names the fault that answered", async () => {
  const u = fake.createManagedUser();
  expect((await refresh(fake.url, u.refreshToken)).status).toBe(200);
  expect((await refresh(fake.url, u.refreshToken)).status).toBe(400);
  fake.faults.next("status503");
  expect((await refresh(fake.url, "never-issued")).status).toBe(503);
  expect(await reported(3)).toMatchObject([
    { outcome: "rotated", delivery: "delivered", remotePort: expect.any(Number) },
    { outcome: "deadRefreshToken", calUserId: u.calUserId, delivery: "delivered" },
    { outcome: "other", delivery: "delivered", fault: "status503" },
  ]);
  expect(calls[0]).not.toHaveProperty("fault");
  expect(calls[2]).not.toHaveProperty("calUserId");
});

it("a connection closed right after the answer is reported closedAfter", async () => {
  const g = fake.createOAuth2Grant();
  const res = await call(`${fake.url}/v2/auth/oauth2/token`, {
    headers: { connection: "close" },
    body: {
      grant_type: "refresh_token",
      client_id: "fake-oauth-client",
      client_secret: "fake-oauth-secret",
      refresh_token: g.refreshToken,
    },
  });
  expect(res.status).toBe(200);
  expect(await reported(1)).toMatchObject([{ outcome: "rotated", delivery: "closedAfter", closedAt: expect.any(Number) }]);
});

it("unreachable: open and new connections are closed, calls in flight still commit unheard; reachable again after", async () => {
  const u = fake.createManagedUser();
  fake.faults.latencyMs = 200;
  const inFlight = refresh(fake.url, u.refreshToken);
  await sleep(50);
  fake.setReachable(false);
  await expect(inFlight).rejects.toThrow();
  await expect(call(`${fake.url}/v2/me`)).rejects.toThrow();
  await sleep(300);
  expect(fake.isRefreshTokenLive(u.refreshToken)).toBe(false);
  expect(await reported(1)).toMatchObject([{ outcome: "rotated", delivery: "gone", calUserId: u.calUserId }]);
  fake.setReachable(true);
  fake.faults.latencyMs = 0;
  expect((await call(`${fake.url}/v2/me`)).status).toBe(401);
});
