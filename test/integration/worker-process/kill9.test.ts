/**
 * A worker process dies hard (SIGKILL, OOM, dyno crash) while refreshes are in flight: Cal.com has
 * committed the rotations but the dead worker never stored them. Another worker must pick up the
 * stalled jobs once their locks and row leases lapse, recover the lost rotations with force-refresh
 * (docs/architecture.md#invariant-3-race-aware-rejection), and leave every user ACTIVE with the live refresh token stored.
 */
import { loadConfig } from "../../../src/config/config.js";
import type { TokenStore } from "../../../src/core/ports.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import {
  eventually,
  sleep,
  spawnWorker,
  startWorker,
  uniquePrefix,
  useTokens,
  workerEnv,
  type WorkerProcess,
} from "../../support/worker-harness.js";

const USERS = 20;
const prefix = uniquePrefix();
// Short leases (row lease and BullMQ lock) so the dead worker's jobs and row leases lapse within seconds;
// the fake answers in 400 ms, inside the 500 ms timeout.
const OVERRIDES = { REFRESH_LEASE_SECONDS: "6", CAL_HTTP_TIMEOUT_MS: "500", WORKER_CONCURRENCY: "10" };
let h: Harness;
let store: TokenStore;
let workerA: WorkerProcess | undefined;
let workerB: WorkerApp | undefined;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  store = createTokenStore({ prisma: h.db, cipher: createTokenCipher(loadConfig(workerEnv(h, prefix)).encryptionKeys) });
});
afterAll(async () => {
  if (workerA && workerA.child.exitCode === null && workerA.child.signalCode === null) workerA.child.kill("SIGKILL");
  await workerB?.close();
  await h?.close();
});

async function storedRefreshTokenLive(userUlid: string): Promise<boolean> {
  const rec = await store.get(userUlid);
  return rec !== null && h.fake.isRefreshTokenLive(rec.refreshToken);
}

it("SIGKILL mid-refresh: another worker takes over the stalled jobs and force-refreshes the lost rotations", async () => {
  const users: SeededUser[] = [];
  for (let i = 0; i < USERS; i++) users.push(await h.seedManaged());
  const ulids = users.map((u) => u.userUlid);
  await useTokens(h, users); // in use: every due user is refreshed (idle ones would make no call)
  await h.db.calToken.updateMany({
    where: { userUlid: { in: ulids } },
    data: { nextRefreshAt: new Date(Date.now() - 1_000), accessTokenExpiresAt: new Date(Date.now() + 20_000) },
  });
  h.fake.resetStats();
  h.fake.faults.latencyMs = 400;

  workerA = spawnWorker(workerEnv(h, prefix, OVERRIDES));
  await workerA.started;
  expect(await eventually(() => (h.fake.stats().calls["managed.refresh"] ?? 0) > 0, 20_000, 10)).toBe(true);
  // Mid-flight: the requests are at Cal.com, which commits them ~200 ms after A is gone.
  await sleep(200);
  workerA.child.kill("SIGKILL");
  const exit = await workerA.exited;
  expect(exit.signal).toBe("SIGKILL");
  await sleep(1_000); // every request A had sent has committed by now
  h.fake.faults.latencyMs = 0;

  const afterKill = h.fake.stats();
  expect(afterKill.refreshes).toBeGreaterThan(0);
  // The users whose rotation Cal.com committed but nobody stored: their stored refresh token is dead.
  const lost: string[] = [];
  for (const u of ulids) if (!(await storedRefreshTokenLive(u))) lost.push(u);
  expect(lost.length).toBeGreaterThan(0);

  workerB = await startWorker(workerEnv(h, prefix, OVERRIDES));

  const settled = await eventually(
    async () => {
      const rows = await h.db.calToken.findMany({ where: { userUlid: { in: ulids } }, select: { userUlid: true, status: true } });
      if (rows.length !== USERS || rows.some((r) => r.status !== "ACTIVE")) return false;
      for (const u of users) {
        const rec = await store.get(u.userUlid);
        // Refreshed (a new pair is stored) and the stored refresh token is the live one.
        if (!rec || rec.refreshToken === u.refreshToken || !h.fake.isRefreshTokenLive(rec.refreshToken)) return false;
      }
      return true;
    },
    40_000,
    500,
  );

  const rows = await h.db.calToken.findMany({
    where: { userUlid: { in: ulids } },
    select: { userUlid: true, status: true, version: true },
  });
  const stale: string[] = [];
  for (const u of users) {
    const rec = await store.get(u.userUlid);
    if (!rec || rec.refreshToken === u.refreshToken || !h.fake.isRefreshTokenLive(rec.refreshToken)) stale.push(u.userUlid);
  }
  expect({ settled, stale, notActive: rows.filter((r) => r.status !== "ACTIVE").map((r) => r.userUlid) }).toEqual({
    settled: true,
    stale: [],
    notActive: [],
  });

  const stats = h.fake.stats();
  expect(stats.forceRefreshes).toBeGreaterThanOrEqual(1);
  // Each dead refresh token was presented at most once per recovery: the 400 led straight to force-refresh.
  expect(stats.deadRefreshTokenUses).toBeLessThanOrEqual(stats.forceRefreshes);
  // Every lost rotation was recovered by force-refresh, and audited as such.
  const forced = await h.db.calTokenAudit.findMany({
    where: { userUlid: { in: ulids }, outcome: "FORCE_REFRESHED" },
    select: { userUlid: true },
  });
  expect(forced.length).toBeGreaterThanOrEqual(1);
  const forcedUsers = new Set(forced.map((a) => a.userUlid));
  expect(lost.filter((u) => !forcedUsers.has(u))).toEqual([]);
  // Nobody was sent to reconnect.
  expect(await h.db.calTokenAudit.count({ where: { userUlid: { in: ulids }, outcome: "RECONNECT_REQUIRED" } })).toBe(0);
}, 90_000);
