/** Every number setting has both bounds; no duration can overflow a Node timer. */
import { loadConfig } from "../../src/config/config.js";
import { MAX_TIMER_MS, millis, seconds, spanSeconds } from "../../src/config/fields.js";
import { MINIMAL_ENV, problemsOf } from "../support/config-env.js";

const good = MINIMAL_ENV;

describe("number bounds", () => {
  it.each([
    ["PORT", "70000", "from 0 to 65535"],
    ["PORT", "-1", "from 0 to 65535"],
    ["WORKER_CONCURRENCY", "0", "from 1 to 500"],
    ["WORKER_CONCURRENCY", "100000", "from 1 to 500"],
    ["CAL_REFRESH_RATE_PER_MINUTE", "0", "from 1 to 1000000"],
    ["CAL_REFRESH_RATE_PER_MINUTE", "99999999", "from 1 to 1000000"],
    ["AUDIT_RETENTION_DAYS", "100000", "from 1 to 3650"],
    ["REFRESH_LEAD_SECONDS", "2147484", "of seconds from 0 to 86400"],
    ["REFRESH_JITTER_SECONDS", "99999999", "of seconds from 0 to 86400"],
    ["ON_DEMAND_BUFFER_SECONDS", "3601", "of seconds from 0 to 3600"],
    ["SWEEP_INTERVAL_SECONDS", "2147484", "of seconds from 1 to 86400"],
    ["CAL_HTTP_TIMEOUT_MS", "2147483648", "of milliseconds from 100 to 120000"],
    ["CAL_HTTP_TIMEOUT_MS", "99", "of milliseconds from 100 to 120000"],
    ["REFRESH_LEASE_SECONDS", "1", "of seconds from 2 to 120"],
    ["REFRESH_LEASE_SECONDS", "121", "of seconds from 2 to 120"],
    ["ON_DEMAND_WAIT_MS", "99", "of milliseconds from 100 to 30000"],
    ["ON_DEMAND_WAIT_MS", "30001", "of milliseconds from 100 to 30000"],
    ["MIN_REFRESH_INTERVAL_SECONDS", "3601", "of seconds from 0 to 3600"],
    ["TOKEN_CACHE_SECONDS", "301", "of seconds from 0 to 300"],
    ["TOKEN_CACHE_MAX_USERS", "0", "from 1 to 1000000"],
    ["KEEP_FRESH_WINDOW_SECONDS", "119", "of seconds from 120 to 2592000"],
    ["KEEP_FRESH_WINDOW_SECONDS", "2592001", "of seconds from 120 to 2592000"],
    ["KEEP_ALIVE_LEAD_SECONDS", "3599", "of seconds from 3600 to 2592000"],
    ["KEEP_ALIVE_JITTER_SECONDS", "2592001", "of seconds from 0 to 2592000"],
    ["REFRESH_TOKEN_AT_RISK_SECONDS", "2592001", "of seconds from 0 to 2592000"],
    ["PARK_SECONDS", "59", "of seconds from 60 to 31536000"],
    ["PARK_SECONDS", "31536001", "of seconds from 60 to 31536000"],
    ["PORT", "1.5", "from 0 to 65535"],
    ["PORT", "1e3", "from 0 to 65535"],
    ["PORT", "ten", "from 0 to 65535"],
  ])("%s=%s is refused (%s)", (name, value, rule) => {
    expect(problemsOf({ ...good, [name]: value })).toEqual([`${name}: must be a whole number ${rule}`]);
  });

  it("lists every out-of-range number at once", () => {
    const problems = problemsOf({
      ...good,
      PORT: "70000",
      SWEEP_INTERVAL_SECONDS: "0",
      CAL_HTTP_TIMEOUT_MS: "9999999999",
      WORKER_CONCURRENCY: "0",
    });
    expect(problems.map((p) => p.split(":")[0]).sort()).toEqual([
      "CAL_HTTP_TIMEOUT_MS",
      "PORT",
      "SWEEP_INTERVAL_SECONDS",
      "WORKER_CONCURRENCY",
    ]);
  });

  it("accepts both ends of each range", () => {
    const low = loadConfig({ ...good, PORT: "0", REFRESH_LEASE_SECONDS: "2", ON_DEMAND_WAIT_MS: "100", MIN_REFRESH_INTERVAL_SECONDS: "0" });
    expect([low.port, low.refresh.leaseMs, low.refresh.onDemandWaitMs, low.refresh.minIntervalMs]).toEqual([0, 2_000, 100, 0]);
    const high = loadConfig({
      ...good,
      PORT: "65535",
      REFRESH_LEASE_SECONDS: "120",
      ON_DEMAND_WAIT_MS: "30000",
      MIN_REFRESH_INTERVAL_SECONDS: "3600",
    });
    expect([high.port, high.refresh.leaseMs, high.refresh.onDemandWaitMs, high.refresh.minIntervalMs]).toEqual([
      65_535, 120_000, 30_000, 3_600_000,
    ]);
  });

  it("no duration setting can reach a Node timer's 2^31 − 1 ms, at its maximum", () => {
    const c = loadConfig({
      ...good,
      REFRESH_LEAD_SECONDS: "86400",
      REFRESH_JITTER_SECONDS: "86400",
      ON_DEMAND_BUFFER_SECONDS: "3600",
      ON_DEMAND_WAIT_MS: "30000",
      MIN_REFRESH_INTERVAL_SECONDS: "3600",
      SWEEP_INTERVAL_SECONDS: "86400",
      CAL_HTTP_TIMEOUT_MS: "120000",
      REFRESH_LEASE_SECONDS: "120",
      TOKEN_CACHE_SECONDS: "300",
    });
    const { ratePerMinute: _count, cache, ...durationsMs } = c.refresh;
    const durations = [...Object.values(durationsMs), cache.ttlMs, c.sweepIntervalMs, c.calcom.timeoutMs];
    for (const ms of durations) expect(ms).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
  });

  it("the refresh policy's spans are date arithmetic, not timers: they may exceed a timer's range", () => {
    const c = loadConfig({ ...good, PARK_SECONDS: "31536000", KEEP_FRESH_WINDOW_SECONDS: "2592000" });
    expect(c.policy.parkMs).toBe(365 * 86_400_000);
    expect(c.policy.keepFreshWindowMs).toBe(30 * 86_400_000);
    expect(c.policy.parkMs).toBeGreaterThan(MAX_TIMER_MS);
    expect(() => spanSeconds(0, 10 * 2_147_484)).not.toThrow();
  });

  it("a duration helper cannot be declared with a bound past a timer's range", () => {
    expect(() => seconds(0, 2_147_484)).toThrow(/exceeds a Node timer/);
    expect(() => millis(0, 2 ** 31)).toThrow(/exceeds a Node timer/);
    expect(() => seconds(0, 2_147_483)).not.toThrow();
  });
});

describe("keep-alive settings together", () => {
  it.each([
    [
      "lead + jitter reach an OAuth2 refresh token's 30 days",
      { KEEP_ALIVE_LEAD_SECONDS: "2000000", KEEP_ALIVE_JITTER_SECONDS: "592000" },
      "KEEP_ALIVE_LEAD_SECONDS: with KEEP_ALIVE_JITTER_SECONDS it must stay below an OAuth2 refresh token's 2592000 s (30 days); got 2000000 + 592000",
    ],
    [
      "the default jitter with a lead of 28 days",
      { KEEP_ALIVE_LEAD_SECONDS: "2419200" },
      "KEEP_ALIVE_LEAD_SECONDS: with KEEP_ALIVE_JITTER_SECONDS it must stay below an OAuth2 refresh token's 2592000 s (30 days); got 2419200 + 172800",
    ],
    [
      "the at-risk alert at or before the keep-alive",
      { KEEP_ALIVE_LEAD_SECONDS: "86400" },
      "REFRESH_TOKEN_AT_RISK_SECONDS: must be below KEEP_ALIVE_LEAD_SECONDS (86400), or every keep-alive raises the alert first; got 86400",
    ],
  ])("%s is refused", (_what, env, problem) => {
    expect(problemsOf({ ...good, ...env })).toEqual([problem]);
  });

  it("accepts a lead just inside the 30 days and an alert just before it (what the worker tests use)", () => {
    const c = loadConfig({
      ...good,
      KEEP_ALIVE_LEAD_SECONDS: "2591980",
      KEEP_ALIVE_JITTER_SECONDS: "19",
      REFRESH_TOKEN_AT_RISK_SECONDS: "2591979",
    });
    expect(c.policy).toMatchObject({ keepAliveLeadMs: 2_591_980_000, keepAliveJitterMs: 19_000, refreshTokenAtRiskMs: 2_591_979_000 });
  });

  it("leaves a non-number to the per-variable rule (one message, not two)", () => {
    expect(problemsOf({ ...good, KEEP_ALIVE_LEAD_SECONDS: "three days" })).toEqual([
      "KEEP_ALIVE_LEAD_SECONDS: must be a whole number of seconds from 3600 to 2592000",
    ]);
  });
});
