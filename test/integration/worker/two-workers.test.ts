/**
 * Two worker processes on the same queues: no user is refreshed twice for one expiry, nobody uses a
 * dead refresh token, and every user stays fresh. The users are in use (a request path used their
 * tokens), so the refresh policy keeps them fresh (docs/architecture.md#scheduling).
 */
import { startHarness, type Harness } from "../../support/harness.js";
import { sleep, spawnWorker, uniquePrefix, useTokens, workerEnv, type WorkerProcess } from "../../support/worker-harness.js";

let h: Harness;
const procs: WorkerProcess[] = [];
const prefix = uniquePrefix();
const TTL_MS = 12_000;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  await h.close();
});

it("refreshes each user once per token lifetime across two processes", async () => {
  const users = await Promise.all(Array.from({ length: 60 }, () => h.seedManaged({ ttlMs: TTL_MS })));
  await useTokens(h, users);
  const env = workerEnv(h, prefix, { WORKER_CONCURRENCY: "5", LOG_LEVEL: "info" });
  procs.push(spawnWorker(env), spawnWorker(env));
  await Promise.all(procs.map((p) => p.started));
  await sleep(2.2 * TTL_MS);
  for (const p of procs) p.child.kill("SIGTERM");
  const exits = await Promise.all(procs.map((p) => p.exited));
  expect(exits.map((e) => e.code)).toEqual([0, 0]);

  const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: { in: users.map((u) => u.userUlid) } }, orderBy: { id: "asc" } });
  expect(new Set(audits.map((a) => a.outcome))).toEqual(new Set(["REFRESHED"]));
  const stats = h.fake.stats();
  expect(stats.deadRefreshTokenUses).toBe(0);
  expect(stats.forceRefreshes).toBe(0);
  for (const u of users) {
    const mine = audits.filter((a) => a.userUlid === u.userUlid);
    // Refreshed at 50–70 % of each 12 s lifetime: 2–4 refreshes in 26 s, each one a new version.
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(mine.map((a) => a.version)).toEqual(mine.map((_, i) => i + 2));
    // Two refreshes for the same expiry would land moments apart; one per lifetime lands ≥ 30 % of it apart.
    for (let i = 1; i < mine.length; i++) {
      expect(mine[i]!.createdAt.getTime() - mine[i - 1]!.createdAt.getTime()).toBeGreaterThan(0.3 * TTL_MS);
    }
  }
  // Both processes did part of the work.
  for (const p of procs) expect(p.output()).toContain("token refreshed");
}, 90_000);
