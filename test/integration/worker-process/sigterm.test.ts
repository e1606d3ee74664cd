/**
 * Graceful shutdown of the real worker process (src/main/worker.ts): Heroku sends SIGTERM (possibly
 * more than once) and SIGKILLs 30 s later. With refreshes in flight at Cal.com, the worker must stop
 * taking jobs, let every started refresh finish AND persist its rotated pair, and exit 0 in time.
 * A rotation Cal.com committed but we never stored is a user silently disconnected.
 */
import { loadConfig } from "../../../src/config/config.js";
import type { TokenStore } from "../../../src/core/ports.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { eventually, sleep, spawnWorker, uniquePrefix, useTokens, workerEnv, type WorkerProcess } from "../../support/worker-harness.js";

const USERS = 20;
const prefix = uniquePrefix();
let h: Harness;
let store: TokenStore;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  store = createTokenStore({ prisma: h.db, cipher: createTokenCipher(loadConfig(workerEnv(h, prefix)).encryptionKeys) });
});
afterAll(async () => {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill("SIGKILL");
  await h?.close();
});

/** The promise's value, or null if it takes longer than `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

it("double SIGTERM with refreshes in flight: exits 0 in time and loses no rotation", async () => {
  worker = spawnWorker(workerEnv(h, prefix, { WORKER_CONCURRENCY: "10" }));
  await worker.started;

  // Slow Cal.com: every refresh sits at the fake for 1.5 s before its rotation commits.
  h.fake.faults.latencyMs = 1_500;
  const users: SeededUser[] = [];
  for (let i = 0; i < USERS; i++) users.push(await h.seedManaged());
  await useTokens(h, users); // in use: every due user is refreshed (idle ones would make no call)
  h.fake.resetStats();
  // Due now (the sweep moves their delayed jobs up); the access tokens expire in 20 s.
  await h.db.calToken.updateMany({
    where: { userUlid: { in: users.map((u) => u.userUlid) } },
    data: { nextRefreshAt: new Date(Date.now() - 1_000), accessTokenExpiresAt: new Date(Date.now() + 20_000) },
  });

  const inFlight = await eventually(() => (h.fake.stats().calls["managed.refresh"] ?? 0) > 0, 20_000, 20);
  expect(inFlight).toBe(true);
  await sleep(300); // let the rest of the first batch reach the fake (each stays there 1.5 s)

  const signalledAt = Date.now();
  worker.child.kill("SIGTERM");
  await sleep(100);
  worker.child.kill("SIGTERM");
  const exit = await within(worker.exited, 25_000);

  expect(exit).not.toBeNull();
  expect(exit!.signal).toBeNull();
  expect(exit!.code).toBe(0);
  expect(exit!.at - signalledAt).toBeLessThan(25_000);

  // Let any request still parked at the fake commit, so a rotation the worker walked away from counts.
  await sleep(2_000);
  const stats = h.fake.stats();
  // The refreshes really were in flight when the signal came.
  expect(stats.refreshes).toBeGreaterThan(0);
  // Every call that reached Cal.com committed a rotation (no timeouts, no failures).
  expect(stats.calls["managed.refresh"]).toBe(stats.refreshes);
  expect(stats.deadRefreshTokenUses).toBe(0);

  // No rotation lost: each user's stored refresh token is the live one at Cal.com, and exactly the
  // users whose refresh reached Cal.com hold a new pair.
  let rotated = 0;
  const notLive: string[] = [];
  for (const u of users) {
    const rec = await store.get(u.userUlid);
    if (!rec || !h.fake.isRefreshTokenLive(rec.refreshToken)) notLive.push(u.userUlid);
    if (rec && rec.refreshToken !== u.refreshToken) rotated += 1;
  }
  expect(notLive).toEqual([]);
  expect(rotated).toBe(stats.refreshes);
  const audits = await h.db.calTokenAudit.count({ where: { userUlid: { in: users.map((u) => u.userUlid) }, outcome: "REFRESHED" } });
  expect(audits).toBe(stats.refreshes);
}, 90_000);

it("a SIGTERM while the worker is still starting stops it cleanly once started (exit 0, not killed)", async () => {
  const starting = spawnWorker(workerEnv(h, prefix));
  // Once the process has set itself up, while the worker is still connecting (before "worker started").
  expect(await eventually(() => starting.output().includes("worker starting"), 20_000, 5)).toBe(true);
  starting.child.kill("SIGTERM");
  const exit = await within(starting.exited, 30_000);
  expect(exit).toMatchObject({ code: 0, signal: null });
}, 60_000);
