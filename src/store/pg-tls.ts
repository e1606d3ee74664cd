import type { ConnectionOptions } from "node:tls";
import { ConfigError } from "../core/errors.js";

/**
 * The `sslmode` values DATABASE_URL (or PGSSLMODE, when the URL has none) may carry, with libpq's meanings
 * (docs/deploy-heroku.md#postgres-tls). There is no fallback to plain text: `allow` and `prefer` connect
 * like `require`.
 */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "no-verify", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What node-postgres gets: the URL without `sslmode`, and TLS options that say exactly what the mode means. */
export interface PgConnection {
  connectionString: string;
  ssl: boolean | ConnectionOptions;
}

export function isSslMode(value: string): value is SslMode {
  return (SSL_MODES as readonly string[]).includes(value);
}

/** The URL's own `sslmode`, or null when it has none. An unknown mode is a ConfigError (the value is a mode, not a secret). */
export function sslModeOf(databaseUrl: string): SslMode | null {
  const mode = new URL(databaseUrl).searchParams.get("sslmode");
  if (mode === null) return null;
  if (!isSslMode(mode)) throw new ConfigError([`DATABASE_URL: sslmode must be one of ${SSL_MODES.join(", ")}`]);
  return mode;
}

/** For the configuration: a URL without `sslmode`, or with a known one. */
export function hasKnownSslMode(databaseUrl: string): boolean {
  const mode = new URL(databaseUrl).searchParams.get("sslmode");
  return mode === null || isSslMode(mode);
}

/** The URL with `sslmode` set to `fallback` when it has none of its own (the URL always wins). */
export function withSslMode(databaseUrl: string, fallback: SslMode | undefined): string {
  if (fallback === undefined || sslModeOf(databaseUrl) !== null) return databaseUrl;
  const url = new URL(databaseUrl);
  url.searchParams.set("sslmode", fallback);
  return url.toString();
}

/**
 * One rule for every connection the service opens (the Prisma pool and the migration runner):
 * - no `sslmode`, or `disable`: plain TCP;
 * - `require`, `no-verify`, `prefer`, `allow`: TLS without certificate verification (libpq's `require`;
 *   what Heroku Postgres needs: its certificates do not chain to a public CA);
 * - `verify-ca`: TLS, the chain must verify (system CAs, or NODE_EXTRA_CA_CERTS), any host name;
 * - `verify-full`: TLS, chain and host name verified.
 * node-postgres gives `require` and `verify-ca` another meaning (full verification, with a warning), so the
 * mode is taken out of the URL and passed as explicit options; `ssl` is always set, so node-postgres never
 * falls back to reading PGSSLMODE itself. Certificate files in the URL (`sslrootcert`, `sslcert`,
 * `sslkey`) are left to node-postgres, which then verifies the server fully.
 */
export function pgConnection(databaseUrl: string): PgConnection {
  const mode = sslModeOf(databaseUrl);
  if (mode === null) return { connectionString: databaseUrl, ssl: false };
  const url = new URL(databaseUrl);
  url.searchParams.delete("sslmode");
  return { connectionString: url.toString(), ssl: tlsFor(mode) };
}

function tlsFor(mode: SslMode): boolean | ConnectionOptions {
  switch (mode) {
    case "disable":
      return false;
    case "allow":
    case "prefer":
    case "require":
    case "no-verify":
      return { rejectUnauthorized: false };
    case "verify-ca":
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case "verify-full":
      return { rejectUnauthorized: true };
  }
}
