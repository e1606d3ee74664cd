/**
 * Fleet-wide gates in front of Cal.com's token endpoints, across processes (real Redis, real Postgres,
 * the fake Cal.com over HTTP): a configuration failure stops every process's token calls without
 * touching any user, one event says why, and a probe resumes them; request paths draw on the same
 * call budget as the worker.
 */
import { Redis } from "ioredis";
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";

const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
afterAll(() => redis.disconnect());

const expire = (h: Harness, userUlid: string) =>
  h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });

describe("the configuration breaker", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ownDatabase: true });
  });
  afterAll(async () => {
    await h.close();
  });

  it("a refused client secret stops token calls in every process, changes no user, and resumes after a probe", async () => {
    const [a, b, c] = [await h.seedManaged(), await h.seedManaged(), await h.seedManaged()];
    for (const u of [a, b, c]) await expire(h, u.userUlid);
    const before = await h.db.calToken.findMany({ orderBy: { userUlid: "asc" } });
    const wrong = { CAL_CLIENT_SECRET: "not-the-secret" };
    const one = h.newClient(wrong);
    const two = h.newClient(wrong);

    const first = await one.ensureValidCalToken(a.userUlid);
    expect(first.error).toMatchObject({ code: "calcom.config_error", retryable: true });
    expect(tokenEndpointCalls(h.fake)).toBe(1);

    // Another process, another user: no call reaches Cal.com while the breaker is open.
    const second = await two.ensureValidCalToken(b.userUlid);
    const third = await one.ensureValidCalToken(c.userUlid);
    expect(tokenEndpointCalls(h.fake)).toBe(1);
    for (const r of [second, third]) {
      expect(r.error).toMatchObject({ code: "calcom.config_error", retryable: true });
      expect(r.error?.retryAfterMs).toBeGreaterThan(0);
    }

    // No user's state changed: same pair, same version, no failure streak, still ACTIVE.
    const after = await h.db.calToken.findMany({ orderBy: { userUlid: "asc" } });
    expect(after.map(pick)).toEqual(before.map(pick));
    // One fleet event says why; none per user.
    const events = await h.db.calTokenEvent.findMany();
    expect(events.map((e) => [e.type, e.userUlid])).toEqual([["token.config_error", null]]);
    expect(JSON.stringify(events[0]?.payload)).toContain("Invalid client secret");

    // The operator fixes the secret; when the probe is due, the next refresh probes and everything resumes.
    const fixed = h.newClient();
    const key = `${h.env().QUEUE_PREFIX}:fleet:config-breaker`;
    await redis.hset(key, "probeAt", Date.now() - 1);
    const probed = await fixed.ensureValidCalToken(b.userUlid);
    expect(probed).toMatchObject({ success: true, refreshed: true });
    expect(await redis.exists(key)).toBe(0);
    const resumed = await fixed.ensureValidCalToken(c.userUlid);
    expect(resumed).toMatchObject({ success: true, refreshed: true });
    expect(tokenEndpointCalls(h.fake)).toBe(3);
    const types = (await h.db.calTokenEvent.findMany({ orderBy: { createdAt: "asc" } })).map((e) => e.type);
    expect(types).toEqual(["token.config_error", "token.config_resolved"]);
  });
});

describe("the shared call budget", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { CAL_REFRESH_RATE_PER_MINUTE: "3" } });
  });
  afterAll(async () => {
    await h.close();
  });

  it("inline refreshes in two processes draw on one budget: the fourth call waits, Cal.com sees three", async () => {
    const users = [await h.seedManaged(), await h.seedManaged(), await h.seedManaged(), await h.seedManaged()];
    for (const u of users) await expire(h, u.userUlid);
    const other = h.newClient();
    const results = [];
    for (const [i, u] of users.entries()) results.push(await (i % 2 === 0 ? h.client : other).ensureValidCalToken(u.userUlid));
    expect(results.slice(0, 3).every((r) => r.success && r.refreshed)).toBe(true);
    expect(results[3]?.error).toMatchObject({ code: "refresh.budget_exhausted", retryable: true });
    expect(results[3]?.error?.retryAfterMs).toBeGreaterThan(0);
    expect(tokenEndpointCalls(h.fake)).toBe(3);
    // Refused by the budget is not the user's failure: no streak, no cool-down.
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: users[3]?.userUlid ?? "" } });
    expect(row).toMatchObject({ failureCount: 0, lastFailureAt: null, version: 1 });
  });
});

function pick(r: { userUlid: string; version: number; status: string; failureCount: number; accessTokenEnc: string; nextRefreshAt: Date }) {
  return [r.userUlid, r.version, r.status, r.failureCount, r.accessTokenEnc, r.nextRefreshAt.getTime()];
}
