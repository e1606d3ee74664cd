/**
 * The worker under a configuration failure (a wrong client secret after a deploy): the first refused
 * call opens the fleet breaker and pauses the refresh queue, so the sweep re-queuing every due user
 * costs no more token calls; no user's row changes; when the secret is fixed a probe resumes everything.
 */
import { Redis } from "ioredis";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";
import { eventually, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp | undefined;
const prefix = uniquePrefix();
const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
});
afterAll(async () => {
  await worker?.close();
  await h.close();
  redis.disconnect();
});

it("a refused secret costs one token call for the whole queue, changes no user, and a probe resumes it", async () => {
  const users = await Promise.all(Array.from({ length: 12 }, () => h.seedManaged()));
  const ids = users.map((u) => u.userUlid);
  await useTokens(h, users); // in use: the worker must refresh them (idle ones would make no call at all)
  await h.db.calToken.updateMany({ where: { userUlid: { in: ids } }, data: { nextRefreshAt: new Date(Date.now() - 1_000) } });
  const before = await h.db.calToken.findMany({ where: { userUlid: { in: ids } }, orderBy: { userUlid: "asc" } });
  h.fake.resetStats();

  worker = await startWorker(workerEnv(h, prefix, { CAL_CLIENT_SECRET: "wrong-after-a-deploy", WORKER_CONCURRENCY: "1" }));
  const paused = await eventually(async () => ((await worker?.refreshQueue.getRateLimitTtl()) ?? 0) > 0, 10_000, 50);
  expect(paused).toBe(true);
  // Several sweeps (1 s each) re-queue every due user meanwhile.
  await new Promise((r) => setTimeout(r, 3_000));
  expect(tokenEndpointCalls(h.fake)).toBe(1);
  const during = await h.db.calToken.findMany({ where: { userUlid: { in: ids } }, orderBy: { userUlid: "asc" } });
  const shape = (r: (typeof before)[number]) => [r.userUlid, r.version, r.status, r.failureCount, r.nextRefreshAt.getTime()];
  expect(during.map(shape)).toEqual(before.map(shape));
  expect(await worker.refreshQueue.getFailedCount()).toBe(0);
  await worker.close();

  // The operator fixes the secret and restarts; the next probe (made due here) resumes every refresh.
  await redis.hset(`${prefix}:fleet:config-breaker`, "probeAt", Date.now() - 1);
  worker = await startWorker(workerEnv(h, prefix, { WORKER_CONCURRENCY: "4" }));
  const refreshed = await eventually(
    async () => (await h.db.calToken.count({ where: { userUlid: { in: ids }, version: { gt: 1 } } })) === ids.length,
    30_000,
    100,
  );
  expect(refreshed).toBe(true);
  expect(await redis.exists(`${prefix}:fleet:config-breaker`)).toBe(0);
  const types = (await h.db.calTokenEvent.findMany({ orderBy: { createdAt: "asc" } })).map((e) => e.type);
  expect(types).toEqual(["token.config_error", "token.config_resolved"]);
}, 60_000);
