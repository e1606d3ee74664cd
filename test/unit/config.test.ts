import { loadConfig } from "../../src/config/config.js";
import type { ConfigError } from "../../src/core/errors.js";
import { MINIMAL_ENV, problemsOf } from "../support/config-env.js";

const KEY = Buffer.alloc(32, 7).toString("base64");
const good = MINIMAL_ENV;

describe("loadConfig", () => {
  it("parses a minimal environment with documented defaults", () => {
    const c = loadConfig(good);
    expect(c.calcom.apiUrl).toBe("https://api.cal.com");
    expect(c.refresh).toEqual({
      leadMs: 600_000,
      jitterMs: 300_000,
      onDemandBufferMs: 120_000,
      onDemandWaitMs: 2_000,
      minIntervalMs: 30_000,
      cache: { ttlMs: 30_000, maxUsers: 10_000 },
      leaseMs: 5_000,
      ratePerMinute: 450,
    });
    expect(c.policy).toEqual({
      keepFreshWindowMs: 300_000,
      keepAliveLeadMs: 3 * 86_400_000,
      keepAliveJitterMs: 2 * 86_400_000,
      refreshTokenAtRiskMs: 86_400_000,
      parkMs: 30 * 86_400_000,
    });
    expect(c.encryptionKeys).toEqual([{ id: "k1", key: Buffer.alloc(32, 7) }]);
    expect(c.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(c.events).toBeNull();
    expect(c.metricsBearerToken).toBeNull();
    expect(c.notes).toEqual([]);
  });

  it("lists every missing secret at once, with no defaults for secrets", () => {
    const problems = problemsOf({});
    for (const name of ["DATABASE_URL", "CAL_OAUTH_CLIENT_ID or CAL_CLIENT_ID", "TOKEN_ENCRYPTION_KEYS"]) {
      expect(problems.some((p) => p.startsWith(`${name}:`))).toBe(true);
    }
    // One line for the missing Cal.com client, naming both kinds (test/unit/config-clients.test.ts).
    expect(problems).toHaveLength(3);
  });

  it("reports each bad value with its name and never echoes secret values", () => {
    const err = (() => {
      try {
        loadConfig({
          ...good,
          CAL_CLIENT_SECRET: "",
          DATABASE_URL: "mysql://x",
          CAL_API_URL: "not a url",
          REFRESH_LEAD_SECONDS: "-5",
          WORKER_CONCURRENCY: "ten",
          LOG_LEVEL: "loud",
          TOKEN_ENCRYPTION_KEYS: "k1:c2hvcnQ=,bad",
          EVENTS_WEBHOOK_URL: "https://hooks.example.test/x",
        });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("expected a ConfigError");
    })();
    const names = err.problems.map((p) => p.split(":")[0]);
    expect(names).toEqual(
      expect.arrayContaining([
        "CAL_CLIENT_SECRET",
        "DATABASE_URL",
        "CAL_API_URL",
        "REFRESH_LEAD_SECONDS",
        "WORKER_CONCURRENCY",
        "LOG_LEVEL",
        "TOKEN_ENCRYPTION_KEYS",
        "EVENTS_WEBHOOK_SECRET",
      ]),
    );
    expect(err.message).toContain("32 bytes");
    expect(err.message).not.toContain("c2hvcnQ=");
    expect(err.code).toBe("config.invalid");
  });

  it("accepts several encryption keys, first one active, and rejects duplicates", () => {
    const other = Buffer.alloc(32, 9).toString("base64");
    expect(loadConfig({ ...good, TOKEN_ENCRYPTION_KEYS: `new:${other}, old:${KEY}` }).encryptionKeys.map((k) => k.id)).toEqual([
      "new",
      "old",
    ]);
    expect(problemsOf({ ...good, TOKEN_ENCRYPTION_KEYS: `a:${KEY},a:${other}` })).toEqual([expect.stringContaining("duplicate key id a")]);
  });

  it("needs both Bull Board credentials or neither", () => {
    expect(problemsOf({ ...good, BULL_BOARD_USERNAME: "ops" })).toEqual([expect.stringMatching(/^BULL_BOARD_PASSWORD:/)]);
  });
});

describe("CAL_API_URL", () => {
  it.each([
    ["https://api.cal.com", "https://api.cal.com"],
    ["https://api.cal.com/", "https://api.cal.com"],
    ["http://127.0.0.1:4010", "http://127.0.0.1:4010"],
  ])("%s is the origin as given", (raw, origin) => {
    const c = loadConfig({ ...good, CAL_API_URL: raw });
    expect(c.calcom.apiUrl).toBe(origin);
    expect(c.notes).toEqual([]);
  });

  it.each(["https://api.cal.com/v2", "https://api.cal.com/v2/"])(
    "%s (the base as Cal.com's docs write it) drops /v2, with a note",
    (raw) => {
      const c = loadConfig({ ...good, CAL_API_URL: raw });
      expect(c.calcom.apiUrl).toBe("https://api.cal.com");
      expect(c.notes).toEqual([expect.stringMatching(/^CAL_API_URL: the trailing "\/v2" was dropped/)]);
    },
  );

  it("refuses any other path in one line that shows it", () => {
    expect(problemsOf({ ...good, CAL_API_URL: "https://api.cal.com/api" })).toEqual([
      'CAL_API_URL: must be the API origin (e.g. https://api.cal.com), without a path; got path "/api"',
    ]);
    expect(problemsOf({ ...good, CAL_API_URL: "https://api.cal.com/v2/v2" })).toEqual([expect.stringContaining('got path "/v2/v2"')]);
    expect(problemsOf({ ...good, CAL_API_URL: "https://api.cal.com/v1" })).toHaveLength(1);
  });

  it("refuses a query string, a fragment or credentials without echoing them", () => {
    for (const [raw, what] of [
      ["https://api.cal.com/?apiKey=sekrit-query", "a query string"],
      ["https://api.cal.com/v2#sekrit-fragment", "a fragment"],
      ["https://user:sekrit-pass@api.cal.com", "credentials"],
    ] as const) {
      const problems = problemsOf({ ...good, CAL_API_URL: raw });
      expect(problems).toEqual([`CAL_API_URL: must be the API origin (e.g. https://api.cal.com), without ${what}`]);
      expect(problems.join()).not.toContain("sekrit");
    }
  });
});

describe("refresh settings", () => {
  it("reads ON_DEMAND_WAIT_MS, MIN_REFRESH_INTERVAL_SECONDS and the short base lease", () => {
    const c = loadConfig({ ...good, ON_DEMAND_WAIT_MS: "1500", MIN_REFRESH_INTERVAL_SECONDS: "10", REFRESH_LEASE_SECONDS: "3" });
    expect(c.refresh).toMatchObject({ onDemandWaitMs: 1_500, minIntervalMs: 10_000, leaseMs: 3_000 });
  });

  it("reads the token cache settings: on for 30 s and 10,000 users by default, 0 turns it off", () => {
    expect(loadConfig(good).refresh.cache).toEqual({ ttlMs: 30_000, maxUsers: 10_000 });
    expect(loadConfig({ ...good, TOKEN_CACHE_SECONDS: "0", TOKEN_CACHE_MAX_USERS: "50" }).refresh.cache).toEqual({
      ttlMs: 0,
      maxUsers: 50,
    });
  });

  it("a lease shorter than the HTTP timeout is fine now (the refresher extends it around each call)", () => {
    const c = loadConfig({ ...good, REFRESH_LEASE_SECONDS: "5", CAL_HTTP_TIMEOUT_MS: "10000" });
    expect([c.refresh.leaseMs, c.calcom.timeoutMs]).toEqual([5_000, 10_000]);
  });
});

describe("METRICS_BEARER_TOKEN", () => {
  it("is optional, and read when set", () => {
    expect(loadConfig({ ...good, METRICS_BEARER_TOKEN: "abcdefghijklmnop-._~+/=" }).metricsBearerToken).toBe("abcdefghijklmnop-._~+/=");
  });

  it.each([
    ["too short", "short-token"],
    ["a space inside", "abcdefgh ijklmnopqrs"],
    ["a character no bearer token has", "abcdefghijklmnop\\"],
  ])("refuses %s without echoing it", (_case, value) => {
    const problems = problemsOf({ ...good, METRICS_BEARER_TOKEN: value });
    expect(problems).toEqual([expect.stringMatching(/^METRICS_BEARER_TOKEN: must be at least 16 characters/)]);
    expect(problems.join()).not.toContain(value);
  });
});

describe("TOKEN_ENCRYPTION_KEYS strict base64", () => {
  const key = Buffer.alloc(32, 0xfb).toString("base64"); // has + and / in it
  it.each([
    ["junk characters", `${key.slice(0, 10)}*${key.slice(11)}`, /other characters/],
    ["whitespace inside", `${key.slice(0, 20)} ${key.slice(20)}`, /whitespace/],
    ["missing padding", key.slice(0, 43), /padding is missing/],
    ["base64url", Buffer.alloc(32, 0xfb).toString("base64url"), /base64url/],
    ["31 bytes", Buffer.alloc(31, 1).toString("base64"), /decodes to 31 bytes/],
    ["33 bytes", Buffer.alloc(33, 1).toString("base64"), /decodes to 33 bytes/],
    ["non-canonical last character", `${key.slice(0, 42)}9=`, /not canonical/],
    ["text after the padding", `${key}AAAA`, /= may only end it/],
  ])("refuses %s, naming the entry and not the key", (_case, bad, reason) => {
    const problems = problemsOf({ ...good, TOKEN_ENCRYPTION_KEYS: `ok:${key},bad:${bad}` });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TOKEN_ENCRYPTION_KEYS: entry 2 \(bad\): key must be exactly 32 bytes of standard base64/);
    expect(problems[0]).toMatch(reason);
    expect(problems[0]).not.toContain(bad.trim());
    expect(problems[0]).not.toContain(key.slice(0, 20));
  });

  it("accepts keys with + and / and surrounding spaces", () => {
    expect(loadConfig({ ...good, TOKEN_ENCRYPTION_KEYS: ` k:${key} ` }).encryptionKeys).toEqual([{ id: "k", key: Buffer.alloc(32, 0xfb) }]);
  });
});
