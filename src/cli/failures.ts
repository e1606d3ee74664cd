/**
 * What the CLI says when a command cannot do its job: one plain line first on stderr, then the
 * details in the log (docs/cli.md#failures). Driver errors are recognised by their codes (Prisma
 * P-codes and the driver adapter's kind, Postgres SQLSTATE, Node errno); a connection that fails
 * without one (pg's connection timeouts carry none) is "cannot reach" only while connecting.
 * No line quotes a URL's credentials or a driver's message.
 */
import { ConfigError, ERROR_CODES, isAppError } from "../core/errors.js";
import { EXIT, type ExitCode } from "./io.js";

export class CliFailure extends Error {
  readonly code: string;
  readonly exit: ExitCode;
  /** Lines printed after the first (indented problems of a configuration, for instance). */
  readonly details: string[];
  constructor(code: string, line: string, exit: ExitCode, opts: { cause?: unknown; details?: string[] } = {}) {
    super(line, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "CliFailure";
    this.code = code;
    this.exit = exit;
    this.details = opts.details ?? [];
  }
}

/** Where a URL points, for messages: host:port and the database name, never the user or password. */
export function urlTarget(url: string, defaultPort: number): { hostPort: string; database: string } {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get("host") || "localhost";
    return { hostPort: `${host}:${u.port || defaultPort}`, database: decodeURIComponent(u.pathname.replace(/^\//, "")) };
  } catch {
    return { hostPort: "(unparseable URL)", database: "" };
  }
}

/** The URL's password (raw and decoded), for scrubbing logged errors; empty when there is none. */
export function urlSecrets(url: string): string[] {
  try {
    const raw = new URL(url).password;
    return raw === "" ? [] : [...new Set([raw, decodeURIComponent(raw)])];
  } catch {
    return [];
  }
}

export const failures = {
  databaseUrl(raw: string | undefined): CliFailure {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw?.trim() ?? "")?.[1];
    const found = !raw?.trim() ? "it is not set" : scheme ? `it starts with ${scheme}://` : "it is not a URL";
    return new CliFailure(ERROR_CODES.config, `DATABASE_URL must be a postgres:// or postgresql:// URL (${found})`, EXIT.usage);
  },
  config(err: ConfigError): CliFailure {
    return new CliFailure(ERROR_CODES.config, "invalid configuration:", EXIT.usage, { details: err.problems.map((p) => `  - ${p}`) });
  },
  databaseMissing(database: string, cause: unknown): CliFailure {
    const name = database === "" ? "named in DATABASE_URL" : database;
    return new CliFailure("database.missing", `database ${name} does not exist (create it, then run \`cal-tokens migrate\`)`, EXIT.usage, {
      cause,
    });
  },
  tablesMissing(cause: unknown): CliFailure {
    return new CliFailure("database.tables_missing", "tables missing: run `cal-tokens migrate`", EXIT.usage, { cause });
  },
  schemaOutdated(cause: unknown): CliFailure {
    return new CliFailure("database.schema_outdated", "database schema out of date: run `cal-tokens migrate`", EXIT.usage, { cause });
  },
  accessDenied(hostPort: string, cause: unknown): CliFailure {
    const line = `the database at ${hostPort} refused the user or password in DATABASE_URL`;
    return new CliFailure("database.access_denied", line, EXIT.usage, { cause });
  },
  databaseTls(hostPort: string, cause: unknown): CliFailure {
    const line = `TLS to the database at ${hostPort} failed (check sslmode in DATABASE_URL, or PGSSLMODE)`;
    return new CliFailure("database.tls", line, EXIT.usage, { cause });
  },
  databaseUnreachable(hostPort: string, reason: string | null, cause: unknown): CliFailure {
    return new CliFailure("database.unreachable", `cannot reach the database at ${hostPort}${reason ? ` (${reason})` : ""}`, EXIT.failed, {
      cause,
    });
  },
  redisUnreachable(hostPort: string, cause: unknown): CliFailure {
    return new CliFailure(ERROR_CODES.queueUnavailable, `Redis not reachable at ${hostPort}`, EXIT.failed, { cause });
  },
  decryptFailed(what: string | null, cause?: unknown): CliFailure {
    const line = `${what ? `${what}: ` : ""}stored tokens could not be decrypted with TOKEN_ENCRYPTION_KEYS (${ERROR_CODES.decryptFailed})`;
    return new CliFailure(ERROR_CODES.decryptFailed, line, EXIT.failed, { cause });
  },
};

/** SQLSTATEs and Prisma codes, by what they mean for the operator. */
const MISSING_DB = new Set(["3D000", "P1003", "DatabaseDoesNotExist"]);
const MISSING_TABLE = new Set(["42P01", "P2021", "TableDoesNotExist"]);
const MISSING_COLUMN = new Set(["42703", "P2022", "ColumnNotFound"]);
const ACCESS_DENIED = new Set(["28P01", "28000", "P1000", "P1010", "AuthenticationFailed", "DatabaseAccessDenied"]);
const UNREACHABLE = new Set(["P1001", "P1002", "P1017", "57P01", "57P02", "57P03", "53300", "DatabaseNotReachable", "ConnectionClosed"]);
const TLS = new Set([
  "P1011",
  "TlsConnectionError",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const NETWORK: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "connection reset",
};

/** Every code an error carries: its own, and the driver adapter's kind and SQLSTATE (Prisma's meta). */
function codesOf(err: unknown): string[] {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } } };
  const cause = e?.meta?.driverAdapterError?.cause;
  return [e?.code, cause?.kind, cause?.originalCode].filter((c): c is string => typeof c === "string");
}

/**
 * A database error as the operator's failure, or null when it is not one we know. `connecting`: the
 * error came from the first contact, so one without a code means the server did not answer.
 */
export function databaseFailure(err: unknown, databaseUrl: string, connecting: boolean): CliFailure | null {
  if (err instanceof CliFailure) return err;
  const codes = codesOf(err);
  const has = (set: Set<string>) => codes.some((c) => set.has(c));
  const target = urlTarget(databaseUrl, 5432);
  if (has(MISSING_DB)) return failures.databaseMissing(target.database, err);
  if (has(MISSING_TABLE)) return failures.tablesMissing(err);
  if (has(MISSING_COLUMN)) return failures.schemaOutdated(err);
  if (has(ACCESS_DENIED)) return failures.accessDenied(target.hostPort, err);
  if (has(TLS)) return failures.databaseTls(target.hostPort, err);
  const network = codes.map((c) => NETWORK[c]).find((r) => r !== undefined);
  if (has(UNREACHABLE) || network) return failures.databaseUnreachable(target.hostPort, network ?? null, err);
  if (connecting) return failures.databaseUnreachable(target.hostPort, isTimeout(err) ? "timed out" : null, err);
  return null;
}

function isTimeout(err: unknown): boolean {
  if (isAppError(err) && err.code === ERROR_CODES.operationTimeout) return true;
  // pg names its connection timeouts only in the message (no code): "timeout expired",
  // "Connection terminated due to connection timeout".
  return err instanceof Error && /timeout/i.test(err.message);
}

/** Any error a command let through, as a failure: known ones by code, the rest as unexpected. */
export function toFailure(err: unknown, databaseUrl: string | null): CliFailure {
  if (err instanceof CliFailure) return err;
  if (err instanceof ConfigError) return failures.config(err);
  if (isAppError(err) && err.code === ERROR_CODES.decryptFailed) return failures.decryptFailed(null, err);
  const db = databaseUrl === null ? null : databaseFailure(err, databaseUrl, false);
  if (db) return db;
  if (isAppError(err)) return new CliFailure(err.code, `${err.message} (${err.code})`, EXIT.failed, { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  const shown = typeof code === "string" || typeof code === "number" ? ` ${code}` : "";
  const name = err instanceof Error ? err.name : "error";
  return new CliFailure(ERROR_CODES.internal, `unexpected error: ${name}${shown} (details in the log below)`, EXIT.failed, { cause: err });
}

/** An error for the log: type, message, code and stack, with the URL passwords replaced. */
export function scrubbedError(err: unknown, secrets: readonly string[], depth = 0): Record<string, unknown> {
  const scrub = (text: string) => secrets.reduce((t, s) => (s === "" ? t : t.split(s).join("[REDACTED]")), text);
  if (!(err instanceof Error)) return { type: typeof err };
  const code = (err as { code?: unknown }).code;
  return {
    type: err.name,
    message: scrub(err.message),
    ...(typeof code === "string" || typeof code === "number" ? { code } : {}),
    ...(err.stack ? { stack: scrub(err.stack) } : {}),
    ...(err.cause !== undefined && depth < 3 ? { cause: scrubbedError(err.cause, secrets, depth + 1) } : {}),
  };
}
