/**
 * Cal.com answers 429: the refresh queue pauses until X-RateLimit-Reset-Default, no job fails for
 * good, attempts are not burned, and every user is refreshed once the window reopens.
 */
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { eventually, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp;
const prefix = uniquePrefix();

beforeAll(async () => {
  // Cal.com's limiter, scaled down: 8 calls per window, then blocked for 2 s (reset header = 2 s).
  h = await startHarness({
    ownDatabase: true,
    env: { QUEUE_PREFIX: prefix },
    fake: { rateLimit: { limit: 8, windowMs: 60_000, blockMs: 2_000 } },
  });
});
afterAll(async () => {
  await worker?.close();
  await h.close();
});

it("pauses on 429 until the reset, fails nothing, and refreshes everyone", async () => {
  const users = await Promise.all(Array.from({ length: 24 }, () => h.seedManaged()));
  await useTokens(h, users); // in use: each due user is refreshed (an idle one would be parked, no call)
  await h.db.calToken.updateMany({
    where: { userUlid: { in: users.map((u) => u.userUlid) } },
    data: { nextRefreshAt: new Date(Date.now() - 1_000) },
  });
  h.fake.resetStats();
  worker = await startWorker(workerEnv(h, prefix, { WORKER_CONCURRENCY: "4" }));
  let sawPause = false;
  const done = await eventually(
    async () => {
      if ((await worker.refreshQueue.getRateLimitTtl()) > 0) sawPause = true;
      return (
        (await h.db.calToken.count({ where: { userUlid: { in: users.map((u) => u.userUlid) }, version: { gt: 1 } } })) === users.length
      );
    },
    45_000,
    100,
  );
  expect(done).toBe(true);
  expect(sawPause).toBe(true);
  const stats = h.fake.stats();
  expect(stats.status429).toBeGreaterThan(0);
  // Paused while blocked: at most one 429 per in-flight slot per block, not a retry storm.
  const blocks = Math.ceil(users.length / 8);
  expect(stats.status429).toBeLessThanOrEqual(blocks * 4);
  expect(await worker.refreshQueue.getFailedCount()).toBe(0);
  expect(stats.deadRefreshTokenUses).toBe(0);
  const completed = await worker.refreshQueue.getJobs(["completed"], 0, 100);
  expect(completed.every((j) => j.attemptsMade <= 1)).toBe(true);
}, 60_000);
