/**
 * The CLI's plain failure lines, from the error shapes the drivers really produce (recorded against
 * a local Postgres: docs/cli.md#failures). The integration tests reproduce each one for real.
 */
import { ConfigError, TokenDecryptError } from "../../src/core/errors.js";
import { TimeoutError } from "../../src/core/timeout.js";
import { databaseFailure, failures, scrubbedError, toFailure, urlSecrets, urlTarget } from "../../src/cli/failures.js";

const URL_WITH_PASSWORD = "postgresql://bob:s3cret%2Fpw@db.example.com:6543/cal_tokens?sslmode=require";

/** A PrismaClientKnownRequestError as @prisma/adapter-pg reports it (code and the adapter's cause). */
function prismaError(code: string, cause: Record<string, unknown>): Error {
  return Object.assign(new Error(`\nInvalid \`prisma.calToken.findFirst()\` invocation: ${code}`), {
    name: "PrismaClientKnownRequestError",
    code,
    meta: { modelName: "CalToken", driverAdapterError: { name: "DriverAdapterError", cause } },
  });
}
/** A pg DatabaseError (SQLSTATE in `code`). */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { name: "error", code });
/** A Node system error. */
const sysError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:5432`), { code, syscall: "connect" });

describe("databaseFailure", () => {
  it.each([
    ["Prisma P1003", prismaError("P1003", { originalCode: "3D000", kind: "DatabaseDoesNotExist", db: "cal_tokens" })],
    ["pg 3D000", pgError("3D000", 'database "cal_tokens" does not exist')],
  ])("%s: database cal_tokens does not exist, exit 2", (_n, err) => {
    const f = databaseFailure(err, URL_WITH_PASSWORD, true);
    expect(f).toMatchObject({ code: "database.missing", exit: 2 });
    expect(f?.message).toMatch(/^database cal_tokens does not exist/);
  });

  it.each([
    ["Prisma P2021", prismaError("P2021", { originalCode: "42P01", kind: "TableDoesNotExist", table: "public.cal_token" })],
    ["Prisma P2010 (raw query)", prismaError("P2010", { originalCode: "42P01", kind: "TableDoesNotExist" })],
    ["pg 42P01", pgError("42P01", 'relation "cal_token" does not exist')],
  ])("%s: tables missing, exit 2", (_n, err) => {
    expect(databaseFailure(err, URL_WITH_PASSWORD, false)).toMatchObject({
      code: "database.tables_missing",
      exit: 2,
      message: "tables missing: run `cal-tokens migrate`",
    });
  });

  it.each([
    ["Prisma P1001", prismaError("P1001", { kind: "DatabaseNotReachable", host: "db.example.com", port: 6543 }), false, null],
    ["ECONNREFUSED", sysError("ECONNREFUSED"), false, "connection refused"],
    ["ENOTFOUND", sysError("ENOTFOUND"), false, "host not found"],
    ["pg connect timeout (no code)", new Error("Connection terminated due to connection timeout"), true, "timed out"],
    ["our TimeoutError", new TimeoutError("connect", 5000), true, "timed out"],
    ["anything else while connecting", new Error("Connection terminated unexpectedly"), true, null],
  ])("%s: cannot reach the database at host:port, exit 1, no credentials", (_n, err, connecting, reason) => {
    const f = databaseFailure(err, URL_WITH_PASSWORD, connecting);
    expect(f).toMatchObject({ code: "database.unreachable", exit: 1 });
    expect(f?.message).toBe(`cannot reach the database at db.example.com:6543${reason ? ` (${reason})` : ""}`);
    expect(f?.message).not.toMatch(/bob|s3cret/);
  });

  it("refused credentials are a configuration error that names neither user nor password", () => {
    const f = databaseFailure(prismaError("P1000", { originalCode: "28P01", kind: "AuthenticationFailed" }), URL_WITH_PASSWORD, true);
    expect(f).toMatchObject({ code: "database.access_denied", exit: 2 });
    expect(f?.message).toBe("the database at db.example.com:6543 refused the user or password in DATABASE_URL");
  });

  it.each([
    ["Prisma P1011", prismaError("P1011", { kind: "TlsConnectionError", reason: "The server does not support SSL connections" })],
    ["a self-signed certificate", Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" })],
  ])("%s: TLS failed, check sslmode, exit 2", (_n, err) => {
    expect(databaseFailure(err, URL_WITH_PASSWORD, true)).toMatchObject({
      code: "database.tls",
      exit: 2,
      message: "TLS to the database at db.example.com:6543 failed (check sslmode in DATABASE_URL, or PGSSLMODE)",
    });
  });

  it("an unknown error after connecting is not guessed at", () => {
    expect(databaseFailure(new Error("something else"), URL_WITH_PASSWORD, false)).toBeNull();
  });
});

describe("the other failures", () => {
  it("DATABASE_URL: says what it found, never the value", () => {
    expect(failures.databaseUrl("mysql://root:pw@db/x").message).toBe(
      "DATABASE_URL must be a postgres:// or postgresql:// URL (it starts with mysql://)",
    );
    expect(failures.databaseUrl("pw-looking-junk").message).toBe(
      "DATABASE_URL must be a postgres:// or postgresql:// URL (it is not a URL)",
    );
    expect(failures.databaseUrl(undefined).message).toBe("DATABASE_URL must be a postgres:// or postgresql:// URL (it is not set)");
    expect(failures.databaseUrl("mysql://x").exit).toBe(2);
  });

  it("decrypt failures keep their code; configuration problems are listed; the rest is unexpected, exit 1", () => {
    expect(toFailure(new TokenDecryptError("bad tag"), null)).toMatchObject({ code: "token.decrypt_failed", exit: 1 });
    expect(toFailure(new ConfigError(["A: required", "B: bad"]), null)).toMatchObject({
      code: "config.invalid",
      exit: 2,
      details: ["  - A: required", "  - B: bad"],
    });
    const odd = toFailure(Object.assign(new Error("carries postgres://bob:s3cret@x"), { code: "EWHAT" }), null);
    expect(odd).toMatchObject({ code: "internal.error", exit: 1, message: "unexpected error: Error EWHAT (details in the log below)" });
  });
});

describe("URLs in messages and logs", () => {
  it("urlTarget is host:port and database only", () => {
    expect(urlTarget(URL_WITH_PASSWORD, 5432)).toEqual({ hostPort: "db.example.com:6543", database: "cal_tokens" });
    expect(urlTarget("postgres://u@127.0.0.1/db", 5432)).toEqual({ hostPort: "127.0.0.1:5432", database: "db" });
    expect(urlTarget("redis://:pw@[::1]:6380", 6379).hostPort).toBe("[::1]:6380");
  });

  it("scrubbedError replaces the password, raw and decoded, in message, stack and cause", () => {
    const secrets = urlSecrets(URL_WITH_PASSWORD);
    expect(secrets).toEqual(["s3cret%2Fpw", "s3cret/pw"]);
    const err = new Error("auth failed for s3cret/pw", { cause: new Error("url s3cret%2Fpw") });
    const logged = JSON.stringify(scrubbedError(err, secrets));
    expect(logged).not.toContain("s3cret");
    expect(logged).toContain("[REDACTED]");
  });
});
