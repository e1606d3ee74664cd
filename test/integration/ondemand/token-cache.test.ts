/**
 * The hot path from memory, across processes (real Redis pub/sub, real Postgres, the fake Cal.com):
 * a fresh token is served without a database read, any change to the pair anywhere in the fleet drops
 * it within ~100 ms, a 498 drops it before the replay, and during a database outage users whose token
 * is in memory keep working.
 */
import { startHarness, testDatabaseUrl, type Harness } from "../../support/harness.js";
import { startTcpProxy, type TcpProxy, viaProxy } from "../../support/tcp-proxy.js";

let h: Harness;
let proxy: TcpProxy;
const CACHE = { TOKEN_CACHE_SECONDS: "30" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  h = await startHarness();
  const db = new URL(testDatabaseUrl());
  proxy = await startTcpProxy(db.hostname, Number(db.port || 5432));
});
afterAll(async () => {
  await h.close();
  await proxy.close();
});

/** A user saved a moment ago: the save's own pair-change message has been delivered by now. */
async function settledUser() {
  const u = await h.seedManaged();
  await sleep(50);
  return u;
}

/** A client whose cache is live (its invalidation feed subscribed): proven by a change it does not see. */
async function cachedClient(overrides: Record<string, string> = {}) {
  const client = h.newClient({ ...CACHE, ...overrides });
  const probe = await settledUser();
  for (let i = 0; i < 100; i++) {
    await client.ensureValidCalToken(probe.userUlid);
    const moved = new Date(Date.now() + 7_200_000 + i);
    await h.db.calToken.update({ where: { userUlid: probe.userUlid }, data: { accessTokenExpiresAt: moved } });
    const again = await client.ensureValidCalToken(probe.userUlid);
    if (again.success && again.tokenInfo?.accessTokenExpiresAt.getTime() !== moved.getTime()) return client;
    await sleep(20);
  }
  throw new Error("the token cache never went live");
}

it("serves a fresh token from memory: a change made behind its back is not seen, a published one is", async () => {
  const client = await cachedClient();
  const u = await settledUser();
  const first = await client.ensureValidCalToken(u.userUlid);
  // Behind the module's back (no pair-change message): memory still answers.
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() + 7_000_000) } });
  const second = await client.ensureValidCalToken(u.userUlid);
  expect(second.tokenInfo?.accessTokenExpiresAt).toEqual(first.tokenInfo?.accessTokenExpiresAt);

  // Another process force-refreshes: the old access token is dead at Cal.com, and this process drops it.
  const other = h.newClient();
  const forced = await other.ensureValidCalToken(u.userUlid, true);
  expect(forced).toMatchObject({ success: true, refreshed: true });
  const started = Date.now();
  let seen = "";
  while (Date.now() - started < 1_000) {
    seen = (await client.ensureValidCalToken(u.userUlid)).tokenInfo?.accessToken ?? "";
    if (seen === forced.tokenInfo?.accessToken) break;
    await sleep(5);
  }
  const staleForMs = Date.now() - started;
  expect(seen).toBe(forced.tokenInfo?.accessToken);
  expect(staleForMs).toBeLessThan(500); // the issue asks ~100 ms; measured in npm run bench
  expect(h.fake.isAccessTokenValid(seen)).toBe(true);
});

it("handleCalApiResponse drops the remembered token before its replay", async () => {
  const client = await cachedClient();
  const u = await settledUser();
  await client.ensureValidCalToken(u.userUlid);
  const other = h.newClient({ TOKEN_CACHE_SECONDS: "0", REDIS_URL: "redis://127.0.0.1:1" }); // publishes nothing
  const forced = await other.ensureValidCalToken(u.userUlid, true);
  const rejected = new Response(JSON.stringify({ status: "error", error: { code: "TokenExpiredException" } }), { status: 498 });
  const used: string[] = [];
  const replay = await client.handleCalApiResponse(
    rejected,
    async (t) => {
      used.push(t);
      return new Response("{}", { status: 200 });
    },
    u.userUlid,
    { accessToken: u.accessToken },
  );
  expect(replay.status).toBe(200);
  expect(used).toEqual([forced.tokenInfo?.accessToken]);
  const next = await client.ensureValidCalToken(u.userUlid);
  expect(next.tokenInfo?.accessToken).toBe(forced.tokenInfo?.accessToken);
});

it("during a database outage, users whose token is in memory keep working; the others get store.unavailable", async () => {
  const client = await cachedClient({ DATABASE_URL: viaProxy(testDatabaseUrl(), proxy), TOKEN_CACHE_SECONDS: "1" });
  const [known, unknown] = [await settledUser(), await settledUser()];
  const before = await client.ensureValidCalToken(known.userUlid);
  await sleep(1_100); // past the cache TTL: only the outage path may still serve it
  proxy.cut();
  try {
    const during = await client.ensureValidCalToken(known.userUlid);
    expect(during).toMatchObject({ success: true, tokenInfo: { accessToken: before.tokenInfo?.accessToken } });
    const other = await client.ensureValidCalToken(unknown.userUlid);
    expect(other.error).toMatchObject({ code: "store.unavailable" });
  } finally {
    proxy.restore();
  }
});

it("TOKEN_CACHE_SECONDS=0 turns it off: every call reads the row", async () => {
  const client = h.newClient({ TOKEN_CACHE_SECONDS: "0" });
  const u = await h.seedManaged();
  await client.ensureValidCalToken(u.userUlid);
  const later = new Date(Date.now() + 7_000_000);
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: later } });
  expect((await client.ensureValidCalToken(u.userUlid)).tokenInfo?.accessTokenExpiresAt).toEqual(later);
});
