import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";
import { pgConnection } from "./pg-tls.js";

export type { PrismaClient } from "../generated/prisma/client.js";

/**
 * Prisma 7 with the pg driver adapter: no engine binary at run time. `max` bounds the pool;
 * `connectionTimeoutMillis` makes a dead database fail fast instead of hanging a request path.
 * TLS follows the URL's `sslmode` (docs/deploy-heroku.md#postgres-tls).
 */
export function createPrisma(databaseUrl: string, opts: { max?: number; connectTimeoutMs?: number } = {}): PrismaClient {
  const adapter = new PrismaPg({
    ...pgConnection(databaseUrl),
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    // The adapter sends and reads timestamps as UTC wall-clock time; pin the session so a server
    // configured with another TimeZone cannot shift stored instants. statement_timeout bounds work on
    // the server; query_timeout and TCP keep-alive bound a half-open connection (failover), which
    // would otherwise hang a request path, a lease holder or the sweep until the OS gives up.
    options: "-c TimeZone=UTC -c statement_timeout=5000",
    query_timeout: 8_000,
    keepAlive: true,
  });
  return new PrismaClient({ adapter });
}
