/**
 * Benchmarks of the background worker (src/wiring/worker-app.ts, jobs/, src/queue): proactive vs
 * reactive refreshing under a request load, refresh throughput against BullMQ's own no-op job rate,
 * the sweep on tables of 10k → 1M rows, a queued refresh vs an inline one, and Redis memory per
 * scheduled user. Every figure is relative to a baseline measured in the same run (interleaved where
 * the two can run side by side); absolute numbers are context.
 *
 * Each section empties cal_token first (the sweep would otherwise enqueue the rows other sections
 * left), uses its own BullMQ prefix under the run's (`ctwbench<pid>…`, keys deleted at the end) and,
 * where it refreshes a lot, its own fake Cal.com (so the fake's per-refresh purge loop only sees
 * this section's tokens).
 *
 * This file holds the helpers the worker sections share; each section lives in its own file here.
 */
import pg from "pg";
import type { Config } from "../../src/config/config.js";
import { startWorkerApp, type WorkerApp } from "../../src/wiring/worker-app.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { OutcomeEvent } from "../../src/refresh/types.js";
import { startFakeCalcom, type FakeCalcom } from "../../test/fakes/calcom/index.js";
import { seedManagedUser } from "../../test/support/seed.js";
import { deleteRedisKeys } from "../lib/setup.js";
import type { BenchContext } from "../lib/types.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Deterministic PRNG (mulberry32), so every run draws the same users and lifetimes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A pg client on the run's database for bulk SQL, closed when the section ends. */
export async function sqlClient(ctx: BenchContext): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: ctx.databaseUrl });
  await c.connect();
  ctx.defer(() => c.end());
  return c;
}

/** Empties the token tables (audit rows cascade) so the sweep only sees this section's rows. */
export async function emptyTables(sql: pg.Client): Promise<void> {
  await sql.query("TRUNCATE cal_token, cal_token_audit, cal_token_event");
}

/** A BullMQ prefix of the section's own, under the run's; its keys are deleted when the section ends. */
export function sectionPrefix(ctx: BenchContext, suffix: string): string {
  const prefix = `${ctx.queuePrefix}${suffix}`;
  ctx.defer(async () => {
    const n = await deleteRedisKeys(ctx.redisUrl, prefix);
    ctx.progress(`deleted ${n} Redis keys under ${prefix}`);
  });
  return prefix;
}

export async function ownFake(ctx: BenchContext): Promise<FakeCalcom> {
  const fake = await startFakeCalcom({ rateLimit: false });
  ctx.defer(() => fake.close());
  return fake;
}

/** Seeds users in `fake` and stores them through `client` (saveCalTokens also schedules their job). */
export async function seedUsers(client: CalTokenClient, fake: FakeCalcom, ttls: (number | undefined)[], parallel = 20): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < ttls.length; start += parallel) {
    const made = await Promise.all(
      ttls.slice(start, start + parallel).map(async (ttl) => {
        const u = await seedManagedUser(client, fake, ttl === undefined ? {} : { ttlMs: ttl });
        return u.userUlid;
      }),
    );
    ids.push(...made);
  }
  return ids;
}

export async function startWorker(ctx: BenchContext, config: Config, onOutcome?: (e: OutcomeEvent) => void): Promise<WorkerApp> {
  const app = await startWorkerApp(config, {
    logger: ctx.logger,
    retryBaseMs: 200,
    watchdogStallMs: 0,
    ...(onOutcome ? { onOutcome } : {}),
  });
  ctx.defer(() => app.close());
  return app;
}

/** Waits until the worker's first sweep (the scheduler runs one at start) has finished. */
export async function firstSweepDone(app: WorkerApp, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const c = await app.sweepQueue.getJobCounts("completed", "failed");
    if ((c.completed ?? 0) + (c.failed ?? 0) > 0) return true;
    await sleep(100);
  }
  return false;
}
