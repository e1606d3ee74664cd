import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { createRedisCallBudget } from "../../../src/fleet/call-budget.js";
import { type BreakerTiming, createRedisConfigBreaker } from "../../../src/fleet/config-breaker.js";
import { deleteRedisKeys } from "../../support/redis-keys.js";

// What only the Redis implementations of the fleet gates have: their keys, and several connections
// (processes) on one prefix. Their behaviour is pinned by fleet-contract.test.ts.

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const TIMING: BreakerTiming = { probeDelayMs: 1_000, maxProbeDelayMs: 5_000, probeLeaseMs: 300 };
const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (ms: number): Date => new Date(T0.getTime() + ms);

let redis: Redis;
beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(() => redis.disconnect());

describe("Redis fleet state", () => {
  // A prefix per test, deleted after it.
  let prefix: string;
  beforeEach(() => {
    prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}:fleet-redis:${randomBytes(4).toString("hex")}`;
  });
  afterEach(() => deleteRedisKeys(REDIS_URL, prefix));

  it("the budget is one hash under the prefix that expires after three windows; the breaker one hash, removed by close", async () => {
    const budget = createRedisCallBudget({ redis, prefix, ratePerMinute: 5, windowMs: 10_000 });
    await budget.take("request", T0);
    expect(await redis.type(`${prefix}:fleet:call-budget`)).toBe("hash");
    const ttl = await redis.pttl(`${prefix}:fleet:call-budget`);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);

    const breaker = createRedisConfigBreaker({ redis, prefix, timing: TIMING });
    await breaker.trip("x", T0);
    expect(await redis.type(`${prefix}:fleet:config-breaker`)).toBe("hash");
    await breaker.close(T0);
    expect(await redis.exists(`${prefix}:fleet:config-breaker`)).toBe(0);
  });

  it("two processes (two Redis connections) on one prefix share the breaker: only one claims the probe", async () => {
    const other = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const a = createRedisConfigBreaker({ redis, prefix, timing: TIMING });
      const b = createRedisConfigBreaker({ redis: other, prefix, timing: TIMING });
      expect(await a.trip("x", T0)).toBe("opened");
      expect(await b.trip("x", at(1))).toBe("still_open");
      expect(await b.state(at(2))).toMatchObject({ open: true, openedAt: T0 });
      const claims = await Promise.all([a, b, a, b].map((x) => x.claimProbe(at(5_000))));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await b.close(at(6_000))).toBe(true);
      expect(await a.state(at(6_000))).toEqual({ open: false });
    } finally {
      other.disconnect();
    }
  });

  it("two processes on one prefix share one budget; another prefix is another budget", async () => {
    const other = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const a = createRedisCallBudget({ redis, prefix, ratePerMinute: 3 });
      const b = createRedisCallBudget({ redis: other, prefix, ratePerMinute: 3 });
      const elsewhere = createRedisCallBudget({ redis, prefix: `${prefix}:elsewhere`, ratePerMinute: 3 });
      const answers = [];
      for (const x of [a, b, a, b]) answers.push((await x.take("request", T0)).ok);
      expect(answers).toEqual([true, true, true, false]);
      expect((await elsewhere.take("request", T0)).ok).toBe(true);
    } finally {
      other.disconnect();
    }
  });
});
