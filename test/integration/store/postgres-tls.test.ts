/**
 * Postgres TLS follows one rule (docs/deploy-heroku.md#postgres-tls): the URL's `sslmode` with libpq's
 * meanings, else PGSSLMODE, else plain. Checked end to end through a TLS front with a self-signed
 * certificate, which is what Heroku Postgres looks like to a client without its CA: `require` must
 * connect (node-postgres alone would verify and fail), the verifying modes must refuse, and the
 * migration runner (the release phase) follows the same rule as the Prisma pool.
 */
import { loadConfig, loadDatabaseUrl } from "../../../src/config/config.js";
import { ConfigError } from "../../../src/core/errors.js";
import { applyMigrations, MIGRATIONS_DIR } from "../../../src/store/migrate.js";
import { pgConnection, withSslMode } from "../../../src/store/pg-tls.js";
import { createPrisma } from "../../../src/store/prisma.js";
import { startPgTlsProxy, type PgTlsProxy } from "../../support/pg-tls-proxy.js";
import { testDatabaseUrl, testEnv } from "../../support/harness.js";

let proxy: PgTlsProxy;

beforeAll(async () => {
  proxy = await startPgTlsProxy();
});
afterAll(async () => {
  await proxy?.close();
});

/** The run's database, reached through the TLS front, with `query` appended (e.g. "sslmode=require"). */
function viaTls(query: string): string {
  const url = new URL(testDatabaseUrl());
  url.host = `127.0.0.1:${proxy.port}`;
  url.search = query;
  return url.toString();
}

async function connectsWith(databaseUrl: string): Promise<number> {
  const prisma = createPrisma(databaseUrl, { max: 1, connectTimeoutMs: 3_000 });
  try {
    const rows = await prisma.$queryRaw<{ n: number }[]>`SELECT 1::int AS n`;
    return rows[0]!.n;
  } finally {
    await prisma.$disconnect();
  }
}

describe("the rule", () => {
  it("maps each sslmode to explicit options and takes it out of the URL", () => {
    const base = "postgres://u:p%40ss@db.example:5432/d";
    expect(pgConnection(base)).toEqual({ connectionString: base, ssl: false });
    expect(pgConnection(`${base}?sslmode=disable`).ssl).toBe(false);
    for (const mode of ["require", "no-verify", "prefer", "allow"]) {
      const c = pgConnection(`${base}?sslmode=${mode}&application_name=x`);
      expect(c.ssl).toEqual({ rejectUnauthorized: false });
      expect(c.connectionString).toBe(`${base}?application_name=x`);
    }
    expect(pgConnection(`${base}?sslmode=verify-full`).ssl).toEqual({ rejectUnauthorized: true });
    const ca = pgConnection(`${base}?sslmode=verify-ca`).ssl as { rejectUnauthorized: boolean; checkServerIdentity: () => unknown };
    expect(ca.rejectUnauthorized).toBe(true);
    expect(ca.checkServerIdentity()).toBeUndefined();
  });

  it("refuses an unknown sslmode as a configuration error that names the variable", () => {
    expect(() => pgConnection("postgres://h/d?sslmode=on")).toThrow(ConfigError);
    expect(() => pgConnection("postgres://h/d?sslmode=on")).toThrow(/DATABASE_URL: sslmode must be one of/);
  });

  it("the URL's sslmode wins; the fallback fills in only a URL without one", () => {
    expect(withSslMode("postgres://h/d", "no-verify")).toBe("postgres://h/d?sslmode=no-verify");
    expect(withSslMode("postgres://h/d?sslmode=disable", "require")).toBe("postgres://h/d?sslmode=disable");
    expect(withSslMode("postgres://h/d", undefined)).toBe("postgres://h/d");
  });
});

describe("the configuration", () => {
  const env = (over: Record<string, string>) => testEnv("http://127.0.0.1:9", over);

  it("PGSSLMODE fills in a DATABASE_URL without sslmode (Heroku's URL has none); the URL's own mode wins", () => {
    expect(loadConfig(env({ DATABASE_URL: "postgres://h/d", PGSSLMODE: "no-verify" })).databaseUrl).toBe(
      "postgres://h/d?sslmode=no-verify",
    );
    expect(loadConfig(env({ DATABASE_URL: "postgres://h/d?sslmode=verify-full", PGSSLMODE: "no-verify" })).databaseUrl).toBe(
      "postgres://h/d?sslmode=verify-full",
    );
    expect(loadConfig(env({ DATABASE_URL: "postgres://h/d" })).databaseUrl).toBe("postgres://h/d");
    expect(loadDatabaseUrl({ DATABASE_URL: "postgres://h/d", PGSSLMODE: "require" })).toBe("postgres://h/d?sslmode=require");
    expect(loadDatabaseUrl({ DATABASE_URL: "postgres://h/d", PGSSLMODE: "" })).toBe("postgres://h/d");
  });

  it("an unknown mode in either place stops the process with the variable named", () => {
    const problems = (e: Record<string, string>) => {
      try {
        loadConfig(env(e));
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ DATABASE_URL: "postgres://h/d?sslmode=on" })).toEqual([
      expect.stringMatching(/^DATABASE_URL: sslmode must be one of disable, /),
    ]);
    expect(problems({ PGSSLMODE: "true" })).toEqual([expect.stringMatching(/^PGSSLMODE: /)]);
    expect(problems({ DATABASE_URL: "mysql://h/d" })).toEqual([expect.stringMatching(/^DATABASE_URL: /)]);
    expect(() => loadDatabaseUrl({ DATABASE_URL: "postgres://h/d?sslmode=on" })).toThrow(/DATABASE_URL: sslmode must be one of/);
    expect(() => loadDatabaseUrl({ DATABASE_URL: "postgres://h/d", PGSSLMODE: "on" })).toThrow(/PGSSLMODE: must be one of/);
  });
});

describe("against a server with a self-signed certificate", () => {
  it("sslmode=require connects over TLS without verifying the certificate (Heroku Postgres)", async () => {
    const before = proxy.tlsSessions();
    await expect(connectsWith(viaTls("sslmode=require"))).resolves.toBe(1);
    await expect(connectsWith(viaTls("sslmode=no-verify"))).resolves.toBe(1);
    expect(proxy.tlsSessions()).toBeGreaterThanOrEqual(before + 2);
  });

  it("verify-full and verify-ca refuse the certificate", async () => {
    await expect(connectsWith(viaTls("sslmode=verify-full"))).rejects.toThrow(/self-signed|certificate/i);
    await expect(connectsWith(viaTls("sslmode=verify-ca"))).rejects.toThrow(/self-signed|certificate/i);
  });

  it("no sslmode, or disable, is plain TCP", async () => {
    const [tlsBefore, plainBefore] = [proxy.tlsSessions(), proxy.plainSessions()];
    await expect(connectsWith(viaTls(""))).resolves.toBe(1);
    await expect(connectsWith(viaTls("sslmode=disable"))).resolves.toBe(1);
    expect(proxy.tlsSessions()).toBe(tlsBefore);
    expect(proxy.plainSessions()).toBe(plainBefore + 2);
  });

  it("the migration runner (release phase) follows the same rule", async () => {
    const before = proxy.tlsSessions();
    const result = await applyMigrations(viaTls("sslmode=require"), MIGRATIONS_DIR);
    expect(result.applied).toEqual([]);
    expect(result.skipped.length).toBeGreaterThan(0);
    expect(proxy.tlsSessions()).toBe(before + 1);
    await expect(applyMigrations(viaTls("sslmode=verify-full"), MIGRATIONS_DIR)).rejects.toThrow(/self-signed|certificate/i);
  });
});
