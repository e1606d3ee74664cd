/**
 * Integration harness: the real on-demand client against the run's Postgres database and a fake
 * Cal.com over HTTP. Every log line goes through testLogger() (scanned for leaked tokens).
 */
import { ulid } from "ulid";
import { createCalTokenClient, type CalTokenClient, type CalTokenClientOptions } from "../../src/wiring/cal-token-client.js";
import { createPrisma, type PrismaClient } from "../../src/store/prisma.js";
import { randomBytes } from "node:crypto";
import { startFakeCalcom } from "../fakes/calcom/index.js";
import type { FakeCalcom, FakeCalcomOptions } from "../fakes/calcom/index.js";
import { testLogger } from "./log-sink.js";
import { seedManagedUser, type SeededUser } from "./seed.js";
import { createTestDatabase, dropTestDatabase } from "./test-db.js";

export const TEST_ENCRYPTION_KEYS = `test1:${Buffer.alloc(32, 42).toString("base64")}`;

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("TEST_DATABASE_URL is not set: run through jest (test/support/global-setup)");
  return url;
}

/** A complete environment for the client under test; overrides win. */
export function testEnv(calUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: overrides.DATABASE_URL ?? testDatabaseUrl(),
    CAL_API_URL: calUrl,
    CAL_CLIENT_ID: "fake-client",
    CAL_CLIENT_SECRET: "fake-secret",
    CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
    CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
    TOKEN_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    CAL_HTTP_TIMEOUT_MS: "2000",
    REFRESH_LEASE_SECONDS: "10",
    // Tests change rows behind the module's back (no pair-change message): read the row every time.
    // The cache's own tests turn it on.
    TOKEN_CACHE_SECONDS: "0",
    LOG_LEVEL: "debug",
    QUEUE_PREFIX: process.env.TEST_QUEUE_PREFIX ?? "ctwtest",
    ...overrides,
  };
}

export interface Harness {
  fake: FakeCalcom;
  /** The database this harness uses (the run's shared one, or its own). */
  databaseUrl: string;
  /** A complete env for another client or a worker on this harness's database and fake. */
  env(overrides?: Record<string, string>): Record<string, string>;
  client: CalTokenClient;
  /** A separate Prisma client for assertions. */
  db: PrismaClient;
  logs: () => Record<string, unknown>[];
  seedManaged(opts?: { ttlMs?: number; withCalUserId?: boolean }): Promise<SeededUser>;
  seedOAuth2(opts?: { ttlMs?: number }): Promise<SeededUser>;
  /** Another client (as another web dyno would be) on the same database and fake. */
  newClient(overrides?: Record<string, string>, options?: Partial<CalTokenClientOptions>): CalTokenClient;
  close(): Promise<void>;
}

export type { SeededUser } from "./seed.js";

export async function startHarness(
  opts: {
    fake?: FakeCalcomOptions;
    env?: Record<string, string>;
    client?: Partial<CalTokenClientOptions>;
    /**
     * A database of its own. Worker tests need it: the sweep enqueues every due row in the database,
     * so a worker would otherwise pick up (and fail on) users seeded by other test files.
     */
    ownDatabase?: boolean;
  } = {},
): Promise<Harness> {
  const ownDbName = opts.ownDatabase ? `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_${randomBytes(3).toString("hex")}` : null;
  const databaseUrl = ownDbName ? await createTestDatabase(ownDbName) : testDatabaseUrl();
  // A queue prefix of its own: fleet-wide state under it (the configuration breaker, the call budget,
  // held pairs) must not leak from one test file into another running at the same time.
  const ownPrefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}h${randomBytes(3).toString("hex")}`;
  const baseEnv = { DATABASE_URL: databaseUrl, QUEUE_PREFIX: ownPrefix, ...opts.env };
  const fake = await startFakeCalcom({
    rateLimit: false,
    ...(process.env.TEST_ISSUED_TOKENS_FILE ? { issuedTokensFile: process.env.TEST_ISSUED_TOKENS_FILE } : {}),
    ...opts.fake,
  });
  const { logger, lines } = testLogger();
  const clients: CalTokenClient[] = [];
  const newClient = (overrides: Record<string, string> = {}, options: Partial<CalTokenClientOptions> = {}) => {
    const c = createCalTokenClient({
      env: testEnv(fake.url, { ...baseEnv, ...overrides }),
      logger,
      refreshPolicy: { pollIntervalMs: 20, persistRetryBaseMs: 50 },
      databasePoolSize: 4,
      ...opts.client,
      ...options,
    });
    clients.push(c);
    return c;
  };
  const client = newClient();
  const db = createPrisma(databaseUrl, { max: 2 });

  return {
    fake,
    databaseUrl,
    env: (overrides = {}) => testEnv(fake.url, { ...baseEnv, ...overrides }),
    client,
    db,
    logs: lines,
    newClient,
    seedManaged: ({ ttlMs = 60 * 60_000, withCalUserId = true } = {}) => seedManagedUser(client, fake, { ttlMs, withCalUserId }),
    async seedOAuth2({ ttlMs = 30 * 60_000 } = {}) {
      const g = fake.createOAuth2Grant({ accessTokenTtlMs: ttlMs });
      const userUlid = ulid();
      await client.saveCalTokens({
        userUlid,
        accessToken: g.accessToken,
        refreshToken: g.refreshToken,
        accessTokenExpiresAt: g.accessTokenExpiresAt,
        kind: "oauth2",
      });
      return { userUlid, calUserId: g.calUserId, accessToken: g.accessToken, refreshToken: g.refreshToken };
    },
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await db.$disconnect();
      await fake.close();
      if (ownDbName) await dropTestDatabase(ownDbName);
    },
  };
}

/** Sum of calls to the three token endpoints. */
export function tokenEndpointCalls(fake: FakeCalcom): number {
  const c = fake.stats().calls;
  return (c["managed.refresh"] ?? 0) + (c["managed.forceRefresh"] ?? 0) + (c["oauth2.token"] ?? 0);
}
