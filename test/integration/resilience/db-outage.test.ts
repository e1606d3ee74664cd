/**
 * Postgres becomes unreachable between Cal.com's refresh response and our write. The rotated pair
 * must not be lost: it is retried, then held in memory and flushed when the database is back.
 */
import { Redis } from "ioredis";
import { startHarness, testDatabaseUrl, type Harness } from "../../support/harness.js";
import { startTcpProxy, viaProxy, type TcpProxy } from "../../support/tcp-proxy.js";

let h: Harness;
let proxy: TcpProxy;
const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
beforeAll(async () => {
  // These tests are about a rotated pair surviving the outage, not about how long a request path
  // waits (request-path-bounds.test.ts covers that): let the request wait for the whole retry.
  h = await startHarness({ env: { ON_DEMAND_WAIT_MS: "20000" } });
  const db = new URL(testDatabaseUrl());
  proxy = await startTcpProxy(db.hostname, Number(db.port || 5432));
});
afterAll(async () => {
  await h.close();
  await proxy.close();
  redis.disconnect();
});
beforeEach(() => {
  proxy.restore();
  h.fake.faults.clear();
  h.fake.resetStats();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cut the database only once the refresh request is at Cal.com (lease taken, response pending). */
async function refreshInFlight(): Promise<void> {
  for (let i = 0; i < 500 && (h.fake.stats().calls["managed.refresh"] ?? 0) === 0; i++) await sleep(10);
  expect(h.fake.stats().calls["managed.refresh"]).toBe(1);
}

async function expiredUserBehindProxy() {
  const u = await h.seedManaged();
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
  const client = h.newClient({ DATABASE_URL: viaProxy(testDatabaseUrl(), proxy) });
  return { u, client };
}

describe("database outage mid-refresh", () => {
  it("short outage: the write is retried and lands; no force-refresh needed", async () => {
    const { u, client } = await expiredUserBehindProxy();
    h.fake.faults.latencyMs = 600;
    const pending = client.ensureValidCalToken(u.userUlid);
    await refreshInFlight();
    proxy.cut();
    await sleep(900); // Cal.com has answered; our first writes fail
    proxy.restore();
    const res = await pending;
    expect(res).toMatchObject({ success: true, refreshed: true });
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row.version).toBe(2);
    // The outage really hit the write: at least one failed attempt was logged before it landed.
    expect(h.logs().some((l) => l.userUlid === u.userUlid && String(l.msg).includes("rotated pair not written yet"))).toBe(true);
    expect(client.refresher.heldPairs.size()).toBe(0);
    const status = await h.client.ensureValidCalToken(u.userUlid);
    expect(status.tokenInfo?.accessToken).toBe(res.tokenInfo?.accessToken);
    expect(h.fake.isAccessTokenValid(res.tokenInfo!.accessToken)).toBe(true);
    expect(h.fake.stats()).toMatchObject({ refreshes: 1, forceRefreshes: 0, deadRefreshTokenUses: 0 });
  });

  it("long outage: the pair is held in memory, served to callers, and flushed (audited RECOVERED) when the database returns", async () => {
    const { u, client } = await expiredUserBehindProxy();
    h.fake.faults.latencyMs = 400;
    const pending = client.ensureValidCalToken(u.userUlid);
    await refreshInFlight();
    proxy.cut();
    const res = await pending; // all write retries fail (~3 s of backoff) while the proxy is down
    expect(res).toMatchObject({ success: true, refreshed: true });
    expect(client.refresher.heldPairs.size()).toBe(1);
    // While the database is down the request path still gets the new token from memory.
    const during = await client.ensureValidCalToken(u.userUlid);
    expect(during).toMatchObject({ success: true, tokenInfo: { accessToken: res.tokenInfo!.accessToken } });
    const stillOld = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(stillOld.version).toBe(1);

    proxy.restore();
    // Right after the database returns, a call must not refresh over the held pair with the dead
    // token the row still holds: the held pair is written first and served.
    const back = await client.ensureValidCalToken(u.userUlid);
    expect(back).toMatchObject({ success: true, tokenInfo: { accessToken: res.tokenInfo!.accessToken } });
    for (let i = 0; i < 50 && client.refresher.heldPairs.size() > 0; i++) await sleep(200);
    expect(client.refresher.heldPairs.size()).toBe(0);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ version: 2, status: "ACTIVE" });
    const after = await h.client.ensureValidCalToken(u.userUlid);
    expect(after.tokenInfo?.accessToken).toBe(res.tokenInfo?.accessToken);
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid } });
    expect(audits.map((a) => a.outcome)).toContain("RECOVERED");
    expect(h.fake.stats()).toMatchObject({ refreshes: 1, forceRefreshes: 0, deadRefreshTokenUses: 0 });
  });

  it("a process that cannot write its pair leaves an encrypted recovery record that another process flushes", async () => {
    const { u, client: stranded } = await expiredUserBehindProxy();
    h.fake.faults.latencyMs = 400;
    const pending = stranded.ensureValidCalToken(u.userUlid);
    await refreshInFlight();
    proxy.cut(); // this process never reaches the database again: as good as dead
    const res = await pending;
    expect(res).toMatchObject({ success: true, refreshed: true });
    const key = `${h.env().QUEUE_PREFIX}:recovery:${u.userUlid}`;
    const raw = await redis.get(key);
    expect(raw).not.toBeNull();
    expect(raw).not.toMatch(/fake_(at|rt)_/); // encrypted at rest in Redis too
    expect(raw).toMatch(/^v2\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){4}$/); // one envelope: nothing outside it is trusted
    const index = `${h.env().QUEUE_PREFIX}:recovery-index`;
    expect(await redis.zrange(index, "0", "-1")).toContain(u.userUlid);

    // Another process, with a working database, needs the user: it finds the record and writes it
    // instead of refreshing with the dead token the row still holds.
    const other = await h.client.ensureValidCalToken(u.userUlid);
    expect(other).toMatchObject({ success: true, tokenInfo: { accessToken: res.tokenInfo!.accessToken } });
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ version: 2, status: "ACTIVE" });
    expect(await redis.get(key)).toBeNull();
    expect(await redis.zrange(index, "0", "-1")).not.toContain(u.userUlid);
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid } });
    expect(audits.map((a) => a.outcome)).toContain("RECOVERED");
    expect(h.fake.stats()).toMatchObject({ refreshes: 1, forceRefreshes: 0, deadRefreshTokenUses: 0 });
  });

  it("database down before the refresh: a clear retryable error and no call to Cal.com", async () => {
    const { u, client } = await expiredUserBehindProxy();
    proxy.cut();
    const res = await client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({ success: false, error: { code: "store.unavailable", retryable: true } });
    expect(h.fake.stats().calls["managed.refresh"] ?? 0).toBe(0);
  });
});
