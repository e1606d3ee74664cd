/**
 * The sweep is the safety net: obliterate the refresh queue mid-run and every due user gets a job back
 * within two sweep intervals; rows written by other code (no job ever added) are picked up too.
 */
import { ulid } from "ulid";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { refreshDedupId } from "../../../src/queue/names.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { eventually, sleep, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp;
const prefix = uniquePrefix();
const SWEEP_S = 2;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  worker = await startWorker(workerEnv(h, prefix, { SWEEP_INTERVAL_SECONDS: String(SWEEP_S) }));
});
afterAll(async () => {
  await worker.close();
  await h.close();
});

async function hasJob(userUlid: string): Promise<boolean> {
  return (await worker.refreshQueue.getDeduplicationJobId(refreshDedupId(userUlid))) !== null;
}

it("restores every due user's job within two sweep intervals after the queue is obliterated", async () => {
  const users = await Promise.all(Array.from({ length: 40 }, () => h.seedManaged()));
  // Active users (a request path used their tokens): a job that finds them due refreshes them.
  await useTokens(h, users);
  // Due within the sweep horizon (2 intervals) but not yet: each should sit as a delayed job.
  for (const u of users) {
    await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { nextRefreshAt: new Date(Date.now() + 1_800) } });
  }
  await worker.refreshQueue.obliterate({ force: true });
  expect(await hasJob(users[0]!.userUlid)).toBe(false);
  const obliteratedAt = Date.now();
  const restored = await eventually(
    async () => {
      const flags = await Promise.all(
        users.map(
          async (u) =>
            (await hasJob(u.userUlid)) || (await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } })).version > 1,
        ),
      );
      return flags.every(Boolean);
    },
    2 * SWEEP_S * 1000 + 1_500,
    100,
  );
  expect(restored).toBe(true);
  expect(Date.now() - obliteratedAt).toBeLessThan(2 * SWEEP_S * 1000 + 1_600);
  // And they all get refreshed once due.
  expect(
    await eventually(
      async () =>
        (await h.db.calToken.count({ where: { userUlid: { in: users.map((u) => u.userUlid) }, version: { gt: 1 } } })) === users.length,
      15_000,
    ),
  ).toBe(true);
  expect(h.fake.stats().deadRefreshTokenUses).toBe(0);
}, 60_000);

it("picks up rows written by other code without a job", async () => {
  const g = h.fake.createManagedUser();
  const userUlid = ulid();
  const other = h.newClient({ REDIS_URL: "redis://127.0.0.1:1" }); // its scheduling fails: no job is added
  await other.saveCalTokens({
    userUlid,
    accessToken: g.accessToken,
    refreshToken: g.refreshToken,
    accessTokenExpiresAt: g.accessTokenExpiresAt,
    calUserId: g.calUserId,
  });
  await useTokens(h, [{ userUlid }]); // an active user: once picked up, it is refreshed
  await h.db.calToken.update({ where: { userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1_000) } });
  expect(await eventually(async () => (await h.db.calToken.findUniqueOrThrow({ where: { userUlid } })).version > 1, 10_000)).toBe(true);
}, 30_000);

it("runs once per tick, not once per worker", async () => {
  const second = await startWorker(workerEnv(h, prefix, { SWEEP_INTERVAL_SECONDS: String(SWEEP_S) }));
  try {
    const before = (await worker.sweepQueue.getJobs(["completed"])).length;
    await sleep(7_000);
    const completed = await worker.sweepQueue.getJobs(["completed"], 0, 200);
    const recent = completed.filter((j) => (j.finishedOn ?? 0) > Date.now() - 7_000);
    // 7 s of 2 s ticks with two workers: 3–4 sweeps at one per tick (slack for a loaded machine);
    // one per worker per tick would show as 6 or more.
    expect(recent.length).toBeGreaterThanOrEqual(2);
    expect(recent.length).toBeLessThanOrEqual(5);
    expect(completed.length).toBeGreaterThan(before);
    const slots = new Set(recent.map((j) => j.id));
    expect(slots.size).toBe(recent.length);
  } finally {
    await second.close();
  }
}, 30_000);
