/**
 * Redis restarts and comes back EMPTY (no persistence: every delayed job, the sweep's job scheduler
 * and the queue settings are gone). The running worker must reconnect on its own, re-create the sweep
 * scheduler, and keep refreshing users — without a process restart. The database is the source of
 * truth; the sweep rebuilds the lost jobs from it.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { jest } from "@jest/globals";
import { Redis } from "ioredis";
import { loadConfig } from "../../../src/config/config.js";
import type { TokenStore } from "../../../src/core/ports.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { SWEEP_SCHEDULER_ID } from "../../../src/queue/names.js";
import { spawnRedisServer } from "../../support/redis-server-process.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { eventually, sleep, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

const prefix = uniquePrefix();
let port = 0;
let redisUrl = "";
let redis: ChildProcess | undefined;
let h: Harness | undefined;
let worker: WorkerApp | undefined;
let store: TokenStore;
let consoleErrors: ReturnType<typeof jest.spyOn> | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const p = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

/** A throwaway redis-server without persistence; resolves once it accepts connections. */
async function startRedis(): Promise<ChildProcess> {
  const { process: child, ready } = spawnRedisServer([
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
  ]);
  await ready;
  return child;
}

async function stopRedis(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** The user holds a pair newer than the one seeded (never prints a token). */
async function rotated(u: SeededUser): Promise<boolean> {
  const rec = await store.get(u.userUlid);
  return rec !== null && rec.refreshToken !== u.refreshToken;
}

async function allRotated(users: SeededUser[]): Promise<boolean> {
  for (const u of users) if (!(await rotated(u))) return false;
  return true;
}

async function makeDueIn(users: SeededUser[], ms: number): Promise<void> {
  await h!.db.calToken.updateMany({
    where: { userUlid: { in: users.map((u) => u.userUlid) } },
    data: { nextRefreshAt: new Date(Date.now() + ms) },
  });
}

beforeAll(async () => {
  port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  redis = await startRedis();
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix, REDIS_URL: redisUrl } });
  const env = workerEnv(h, prefix, { REDIS_URL: redisUrl });
  store = createTokenStore({ prisma: h.db, cipher: createTokenCipher(loadConfig(env).encryptionKeys) });
  worker = await startWorker(env);
});
afterAll(async () => {
  consoleErrors?.mockRestore();
  // Closing BullMQ needs Redis; if a failure left it down, do not hang here.
  const closeAll = (async () => {
    await worker?.close();
    await h?.close();
  })();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closeAll, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
  clearTimeout(timer);
  await stopRedis(redis);
}, 30_000);

it("keeps refreshing after Redis restarts empty, without a worker restart", async () => {
  // Connection errors during the outage must reach our logger, not BullMQ's console.error fallback
  // for an 'error' event nobody listens to.
  consoleErrors = jest.spyOn(console, "error").mockImplementation(() => undefined);
  // Before the outage: users due in 2 s are refreshed.
  const before: SeededUser[] = [];
  for (let i = 0; i < 5; i++) before.push(await h!.seedManaged());
  // Every user here is in use (a request path used the token): the worker keeps each one fresh.
  await useTokens(h!, before);
  await makeDueIn(before, 2_000);
  expect(await eventually(() => allRotated(before), 20_000, 250)).toBe(true);

  // Users saved before the outage whose delayed jobs (due in ~45 min) Redis is about to forget.
  const forgotten: SeededUser[] = [];
  for (let i = 0; i < 5; i++) forgotten.push(await h!.seedManaged());
  await useTokens(h!, forgotten);

  const delayedJobs = async () => {
    const probe = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      return await probe.zcard(`${prefix}:token-refresh:delayed`);
    } finally {
      probe.disconnect();
    }
  };
  expect(await delayedJobs()).toBeGreaterThanOrEqual(forgotten.length);

  await stopRedis(redis);
  redis = undefined;
  await sleep(3_000);
  redis = await startRedis();
  // It really came back empty: the delayed jobs are gone (nothing is due yet, so the sweep adds none).
  expect(await delayedJobs()).toBe(0);

  // Only the sweep (whose scheduler died with Redis) can find these now.
  await makeDueIn(forgotten, 2_000);
  // And users saved after the restart, due in a few seconds (scheduled by the save or the sweep).
  const after: SeededUser[] = [];
  for (let i = 0; i < 5; i++) after.push(await h!.seedManaged({ ttlMs: 8_000 }));
  await useTokens(h!, after);

  const recovered = await eventually(() => allRotated([...forgotten, ...after]), 30_000, 250);
  const missing: string[] = [];
  for (const u of [...forgotten, ...after]) if (!(await rotated(u))) missing.push(u.userUlid);
  expect({ recovered, missing }).toEqual({ recovered: true, missing: [] });
  expect(await worker!.sweepQueue.getJobScheduler(SWEEP_SCHEDULER_ID)).toBeTruthy();
  expect(consoleErrors.mock.calls.map((c: unknown[]) => String(c[0]).slice(0, 200))).toEqual([]);
  expect(worker!.refreshWorker.isRunning()).toBe(true);
  expect(h!.fake.stats().deadRefreshTokenUses).toBe(0);
  expect(
    await h!.db.calToken.count({
      where: { userUlid: { in: [...before, ...forgotten, ...after].map((u) => u.userUlid) }, status: { not: "ACTIVE" } },
    }),
  ).toBe(0);
}, 90_000);
