/**
 * Run-wide fixtures: the run's own database (`bench_<pid>`, created with every migration and
 * dropped at the end, also on error or Ctrl-C), the in-process fake Cal.com, and a per-section
 * context that closes whatever the section opened.
 */
import { cpus } from "node:os";
import pg from "pg";
import { createLogger, type Logger } from "../../src/log/logger.js";
import { createCalTokenClient, type CalTokenClient, type CalTokenClientOptions } from "../../src/wiring/cal-token-client.js";
import { createPrisma, type PrismaClient } from "../../src/store/prisma.js";
import { startFakeCalcom, type FakeCalcom } from "../../test/fakes/calcom/index.js";
import { createTestDatabase, dropTestDatabase } from "../../test/support/test-db.js";
import type { BenchContext, MachineInfo } from "./types.js";
import { deleteRedisKeys } from "../../test/support/redis-keys.js";
import { seedManagedUser } from "../../test/support/seed.js";

export { deleteRedisKeys };

/** Same shape as the integration tests' key (test/support/harness.ts); never a real key. */
export const BENCH_ENCRYPTION_KEYS = `bench1:${Buffer.alloc(32, 7).toString("base64")}`;

/** Redis for BullMQ (the worker sections); every key the run creates lives under the run's prefix. */
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface BenchRun {
  dbName: string;
  databaseUrl: string;
  /** BullMQ prefix of this run (`ctwbench<pid>`); its keys are deleted at the end. */
  queuePrefix: string;
  fake: FakeCalcom;
  logger: Logger;
  machine: MachineInfo;
  /** A fresh context for one section; `finish()` runs its deferred closers. */
  sectionContext(sectionName: string, notes: string[]): { ctx: BenchContext; finish(): Promise<void> };
  /** Closes the fake and drops the database. Idempotent. */
  close(): Promise<void>;
}

export async function startBenchRun(progress: (text: string) => void): Promise<BenchRun> {
  const dbName = `bench_${process.pid}`;
  // Without it the clients' saves would schedule jobs under the default prefix (caltok) and leave them there.
  const queuePrefix = `ctwbench${process.pid}`;
  let databaseUrl: string | undefined;
  let fake: FakeCalcom | undefined;
  let closing: Promise<void> | undefined;

  const close = () =>
    (closing ??= (async () => {
      await fake?.close().catch(() => undefined);
      await deleteRedisKeys(BENCH_REDIS_URL, queuePrefix).then(
        (n) => progress(`deleted ${n} Redis keys under ${queuePrefix}`),
        (err: unknown) => progress(`could not delete Redis keys under ${queuePrefix}: ${String(err)}`),
      );
      if (databaseUrl !== undefined) {
        // WITH (FORCE) also ends connections a failed section left open.
        await dropTestDatabase(dbName).then(
          () => progress(`dropped database ${dbName}`),
          (err: unknown) => progress(`could not drop database ${dbName}: ${String(err)}`),
        );
      }
    })());

  try {
    progress(`creating database ${dbName}`);
    // createTestDatabase drops a leftover of the same name first.
    databaseUrl = await createTestDatabase(dbName);
    fake = await startFakeCalcom({ rateLimit: false });
    const machine = await machineInfo(databaseUrl);
    const logger = createLogger({ level: "silent" });
    const url = databaseUrl;
    const theFake = fake;

    const env = (overrides: Record<string, string> = {}): Record<string, string> => ({
      DATABASE_URL: url,
      CAL_API_URL: theFake.url,
      CAL_CLIENT_ID: "fake-client",
      CAL_CLIENT_SECRET: "fake-secret",
      CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
      CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
      TOKEN_ENCRYPTION_KEYS: BENCH_ENCRYPTION_KEYS,
      CAL_HTTP_TIMEOUT_MS: "5000",
      REFRESH_LEASE_SECONDS: "30",
      LOG_LEVEL: "silent",
      REDIS_URL: BENCH_REDIS_URL,
      QUEUE_PREFIX: queuePrefix,
      ...overrides,
    });

    return {
      dbName,
      databaseUrl: url,
      queuePrefix,
      fake: theFake,
      logger,
      machine,
      close,
      sectionContext(sectionName, notes) {
        const closers: (() => unknown)[] = [];
        const defer = (fn: () => unknown) => void closers.push(fn);
        const ctx: BenchContext = {
          databaseUrl: url,
          redisUrl: BENCH_REDIS_URL,
          queuePrefix,
          fake: theFake,
          logger,
          machine,
          env,
          defer,
          note: (text) => void notes.push(text),
          progress: (text) => progress(`[${sectionName}] ${text}`),
          createClient(options: Partial<CalTokenClientOptions> = {}): CalTokenClient {
            const client = createCalTokenClient({ env: env(), logger, ...options });
            defer(() => client.close());
            return client;
          },
          createPrisma(poolSize: number): PrismaClient {
            const prisma = createPrisma(url, { max: poolSize });
            defer(() => prisma.$disconnect());
            return prisma;
          },
          async seedManagedUsers(client, count, opts = {}) {
            const ids: string[] = [];
            const batch = 10;
            for (let start = 0; start < count; start += batch) {
              const n = Math.min(batch, count - start);
              const made = await Promise.all(
                Array.from({ length: n }, async () => {
                  const u = await seedManagedUser(
                    client,
                    theFake,
                    opts.accessTokenTtlMs === undefined ? {} : { ttlMs: opts.accessTokenTtlMs },
                  );
                  return u.userUlid;
                }),
              );
              ids.push(...made);
            }
            return ids;
          },
        };
        return {
          ctx,
          async finish() {
            for (const fn of closers.reverse()) {
              try {
                await fn();
              } catch (err) {
                progress(`[${sectionName}] cleanup step failed: ${String(err)}`);
              }
            }
          },
        };
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function machineInfo(databaseUrl: string): Promise<MachineInfo> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const version = (await c.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version ?? "?";
    const fsync = (await c.query<{ fsync: string }>("SHOW fsync")).rows[0]?.fsync ?? "?";
    const sync = (await c.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]?.synchronous_commit ?? "?";
    const list = cpus();
    return {
      cores: list.length,
      cpuModel: (list[0]?.model ?? "unknown cpu").replace(/\s+/g, " ").trim(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      postgres: `PostgreSQL ${version.split(" ")[0] ?? version}`,
      pgDurability: `fsync=${fsync}, synchronous_commit=${sync}`,
    };
  } finally {
    await c.end();
  }
}
