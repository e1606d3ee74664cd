import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { CallBudget, ConfigBreaker } from "../../../src/core/ports.js";
import { createRedisCallBudget } from "../../../src/fleet/call-budget.js";
import { type BreakerTiming, createRedisConfigBreaker } from "../../../src/fleet/config-breaker.js";
import { createInMemoryCallBudget, createInMemoryConfigBreaker } from "../../fakes/in-memory-fleet.js";
import { deleteRedisKeys } from "../../support/redis-keys.js";

// The fleet gates' contract: ONE table of behaviours run against the Redis implementations
// (src/fleet, real Redis, a key prefix per test, deleted after it) and the in-memory doubles the unit
// tests use (test/fakes/in-memory-fleet.ts), so the doubles cannot drift from the real thing.
// The breaker takes time from the caller; the budget reads its own clock (Redis TIME), so its
// window tests align to that clock and wait for real, on windows of a few hundred milliseconds.

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const TIMING: BreakerTiming = { probeDelayMs: 1_000, maxProbeDelayMs: 5_000, probeLeaseMs: 300 };
const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (ms: number): Date => new Date(T0.getTime() + ms);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

interface BudgetOptions {
  ratePerMinute: number;
  reserve?: number;
  windowMs?: number;
}

/** A subject under test: fresh instances per test, plus the budget's own clock. */
interface Subject {
  breaker(timing?: BreakerTiming): ConfigBreaker;
  budget(opts: BudgetOptions): CallBudget;
  /** The budget's clock, in epoch ms (Redis TIME for Redis). */
  serverNow(): Promise<number>;
  /** Deletes whatever the test stored. */
  cleanUp(): Promise<void>;
}

function redisSubject(redis: Redis): Subject {
  const prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}:fleet-contract:${randomBytes(4).toString("hex")}`;
  let n = 0;
  // One prefix per instance, all under the test's prefix, so two instances never share state.
  const next = () => `${prefix}:${++n}`;
  return {
    breaker: (timing = TIMING) => createRedisConfigBreaker({ redis, prefix: next(), timing }),
    budget: (opts) => createRedisCallBudget({ redis, prefix: next(), ...opts }),
    async serverNow() {
      const [s, us] = await redis.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    },
    cleanUp: async () => void (await deleteRedisKeys(REDIS_URL, prefix)),
  };
}

function inMemorySubject(): Subject {
  return {
    breaker: (timing = TIMING) => createInMemoryConfigBreaker({ timing }),
    budget: (opts) => createInMemoryCallBudget(opts),
    serverNow: async () => Date.now(),
    cleanUp: async () => undefined,
  };
}

let redis: Redis;
beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});
afterAll(() => redis.disconnect());

const SUBJECTS: [string, () => Subject][] = [
  ["redis", () => redisSubject(redis)],
  ["in-memory", inMemorySubject],
];

describe.each(SUBJECTS)("fleet gates contract: %s", (_name, makeSubject) => {
  let s: Subject;
  beforeEach(() => {
    s = makeSubject();
  });
  afterEach(() => s.cleanUp());

  /** Sleeps until `phaseMs` into the budget's next window (by the budget's own clock). */
  async function alignTo(windowMs: number, phaseMs: number): Promise<void> {
    const now = await s.serverNow();
    await sleep((Math.floor(now / windowMs) + 1) * windowMs + phaseMs - now);
  }

  /** Takes `count` times; the answers in order. */
  async function takeMany(budget: CallBudget, callClass: "request" | "background", count: number) {
    const out: boolean[] = [];
    for (let i = 0; i < count; i++) out.push((await budget.take(callClass, T0)).ok);
    return out;
  }

  describe("config breaker", () => {
    it("starts closed: nothing to probe, close reports it was not open", async () => {
      const b = s.breaker();
      expect(await b.state(T0)).toEqual({ open: false });
      expect(await b.claimProbe(at(60_000))).toBe(false);
      expect(await b.close(T0)).toBe(false);
    });

    it("trip opens it once: `opened`, then `still_open`; the state carries the reason, when it opened and the first probe", async () => {
      const b = s.breaker();
      expect(await b.trip("Cal.com 401: invalid client secret", T0)).toBe("opened");
      expect(await b.state(at(10))).toEqual({ open: true, reason: "Cal.com 401: invalid client secret", openedAt: T0, probeAt: at(1_000) });
      expect(await b.trip("Cal.com 403: other", at(100))).toBe("still_open");
      // Still open since T0; the newest reason is kept.
      expect(await b.state(at(200))).toMatchObject({ open: true, reason: "Cal.com 403: other", openedAt: T0 });
    });

    it("each still_open backs the next probe off exponentially, up to the maximum", async () => {
      const b = s.breaker();
      await b.trip("x", T0);
      const probeDelays: number[] = [];
      for (let i = 1; i <= 5; i++) {
        const now = at(i * 10_000);
        expect(await b.trip("x", now)).toBe("still_open");
        const state = await b.state(now);
        probeDelays.push(state.open ? state.probeAt.getTime() - now.getTime() : -1);
      }
      expect(probeDelays).toEqual([2_000, 4_000, 5_000, 5_000, 5_000]);
    });

    it("claimProbe only when the probe is due, and only once until the probe lease ends", async () => {
      const b = s.breaker();
      await b.trip("x", T0);
      expect(await b.claimProbe(at(999))).toBe(false);
      expect(await b.claimProbe(at(1_000))).toBe(true);
      expect(await b.claimProbe(at(1_000))).toBe(false);
      expect(await b.claimProbe(at(1_299))).toBe(false);
      // A prober that died frees the slot after probeLeaseMs.
      expect(await b.claimProbe(at(1_300))).toBe(true);
      expect(await b.state(at(1_300))).toMatchObject({ open: true, probeAt: at(1_000) });
    });

    it("a failed probe (trip while open) frees the probe slot and moves the next probe on", async () => {
      const b = s.breaker();
      await b.trip("x", T0);
      expect(await b.claimProbe(at(1_000))).toBe(true);
      expect(await b.trip("x", at(1_100))).toBe("still_open");
      expect(await b.claimProbe(at(1_200))).toBe(false);
      expect(await b.claimProbe(at(3_099))).toBe(false);
      expect(await b.claimProbe(at(3_100))).toBe(true);
    });

    it("close: true once when open; a later trip opens it afresh with the first probe delay", async () => {
      const b = s.breaker();
      await b.trip("x", T0);
      await b.trip("x", at(10));
      await b.trip("x", at(20));
      expect(await b.close(at(30))).toBe(true);
      expect(await b.state(at(30))).toEqual({ open: false });
      expect(await b.close(at(31))).toBe(false);
      expect(await b.claimProbe(at(60_000))).toBe(false);
      expect(await b.trip("y", at(100))).toBe("opened");
      expect(await b.state(at(100))).toEqual({ open: true, reason: "y", openedAt: at(100), probeAt: at(1_100) });
    });

    it("keeps at most 300 characters of a reason", async () => {
      const b = s.breaker();
      await b.trip("r".repeat(1_000), T0);
      const state = await b.state(T0);
      expect(state.open && state.reason).toBe("r".repeat(300));
    });

    it("concurrent claims of a due probe: exactly one wins", async () => {
      const b = s.breaker();
      await b.trip("x", T0);
      const claims = await Promise.all(Array.from({ length: 10 }, () => b.claimProbe(at(1_000))));
      expect(claims.filter(Boolean)).toHaveLength(1);
    });
  });

  describe("call budget", () => {
    it("a request path may use the whole budget; the next call is refused with a wait inside the window", async () => {
      const budget = s.budget({ ratePerMinute: 5 });
      expect(await takeMany(budget, "request", 5)).toEqual([true, true, true, true, true]);
      const refused = await budget.take("request", T0);
      expect(refused.ok).toBe(false);
      if (!refused.ok) {
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(60_001);
      }
    });

    it("background work stops `reserve` short; request paths still get the reserved calls", async () => {
      const budget = s.budget({ ratePerMinute: 5, reserve: 2 });
      expect(await takeMany(budget, "background", 4)).toEqual([true, true, true, false]);
      expect(await takeMany(budget, "request", 3)).toEqual([true, true, false]);
      expect(await takeMany(budget, "background", 1)).toEqual([false]);
    });

    it.each([
      [10, 8],
      [5, 4],
      [2, 1],
      [1, 1],
    ])(
      "the default reserve is a fifth of the budget, at least one, never all of it: %i a minute → %i for background",
      async (rate, background) => {
        const budget = s.budget({ ratePerMinute: rate });
        const answers = await takeMany(budget, "background", rate + 1);
        expect(answers.filter(Boolean)).toHaveLength(background);
        expect(answers.slice(0, background).every(Boolean)).toBe(true);
      },
    );

    it("ignores the caller's clock: a caller far in the future gets no fresh window", async () => {
      const budget = s.budget({ ratePerMinute: 2 });
      expect((await budget.take("request", T0)).ok).toBe(true);
      expect((await budget.take("request", at(3_600_000))).ok).toBe(true);
      expect((await budget.take("request", at(7_200_000))).ok).toBe(false);
    });

    it("a refused caller that waits the retryAfterMs it was given gets a call within two windows", async () => {
      const windowMs = 300;
      const budget = s.budget({ ratePerMinute: 2, windowMs });
      const started = Date.now();
      expect(await takeMany(budget, "request", 2)).toEqual([true, true]);
      let answer = await budget.take("request", T0);
      let refusals = 0;
      while (!answer.ok) {
        refusals += 1;
        expect(answer.retryAfterMs).toBeGreaterThan(0);
        expect(answer.retryAfterMs).toBeLessThanOrEqual(windowMs + 1);
        await sleep(answer.retryAfterMs);
        answer = await budget.take("request", T0);
      }
      expect(refusals).toBeGreaterThanOrEqual(1);
      expect(refusals).toBeLessThanOrEqual(3);
      expect(Date.now() - started).toBeLessThan(3 * windowMs);
    });

    it("the window slides: a full window still counts in proportion early in the next one", async () => {
      const windowMs = 600;
      const budget = s.budget({ ratePerMinute: 4, windowMs });
      await alignTo(windowMs, 20);
      expect(await takeMany(budget, "request", 4)).toEqual([true, true, true, true]);
      // Early in the next window (< 25 % in) the previous 4 still weigh more than 3: refused (a fixed window would allow 4).
      await alignTo(windowMs, 40);
      const early = await budget.take("request", T0);
      expect(early.ok).toBe(false);
      // Refused while the current window is empty: the wait is the point where the previous one weighs 3.
      if (!early.ok) expect(early.retryAfterMs).toBeLessThanOrEqual(windowMs / 4);
      // Half way through (50-75 %), the previous window weighs 2: exactly two more calls.
      const now = await s.serverNow();
      await sleep(Math.floor(now / windowMs) * windowMs + 0.6 * windowMs - now);
      expect(await takeMany(budget, "request", 3)).toEqual([true, true, false]);
    });
  });
});
