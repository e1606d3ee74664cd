import { loadConfig } from "../../src/config/config.js";
import { ConfigError } from "../../src/core/errors.js";

const KEY = Buffer.alloc(32, 7).toString("base64");
const good = {
  DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/x",
  CAL_CLIENT_ID: "client",
  CAL_CLIENT_SECRET: "super-secret-value",
  TOKEN_ENCRYPTION_KEYS: `k1:${KEY}`,
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("parses a minimal environment with documented defaults", () => {
    const c = loadConfig(good);
    expect(c.calcom.apiUrl).toBe("https://api.cal.com");
    expect(c.refresh).toEqual({ leadMs: 600_000, jitterMs: 300_000, onDemandBufferMs: 120_000, leaseMs: 60_000, ratePerMinute: 450 });
    expect(c.encryptionKeys).toEqual([{ id: "k1", key: Buffer.alloc(32, 7) }]);
    expect(c.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(c.events).toBeNull();
  });

  it("lists every missing secret at once, with no defaults for secrets", () => {
    const problems = problemsOf({});
    for (const name of ["DATABASE_URL", "CAL_CLIENT_ID", "CAL_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS"]) {
      expect(problems.some((p) => p.startsWith(`${name}:`))).toBe(true);
    }
    expect(problems).toHaveLength(4);
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

  it("refuses a lease shorter than two refresh calls", () => {
    const problems = problemsOf({ ...good, REFRESH_LEASE_SECONDS: "10", CAL_HTTP_TIMEOUT_MS: "10000" });
    expect(problems).toEqual([expect.stringMatching(/^REFRESH_LEASE_SECONDS: must be at least/)]);
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
