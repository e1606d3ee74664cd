/**
 * The reason this project exists: with the worker running, 200 users in use whose tokens expire in
 * 20–60 s are all refreshed before expiry; a request-path loop (ensureValidCalToken + /v2/me +
 * handleCalApiResponse) never sees a 498 and never waits on a refresh. "In use": a request path used
 * each token before the worker started (the refresh policy keeps fresh only users seen within
 * KEEP_FRESH_WINDOW_SECONDS, docs/architecture.md#scheduling); the loop then keeps them in use.
 */
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { sleep, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

const USERS = 200;
let h: Harness;
let worker: WorkerApp;
const prefix = uniquePrefix();

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix, ON_DEMAND_BUFFER_SECONDS: "3" } });
});
afterAll(async () => {
  await worker?.close();
  await h.close();
});

it("refreshes every user before expiry; no request sees a 498 or waits on a refresh", async () => {
  const users: (SeededUser & { firstExpiry: number })[] = [];
  for (let i = 0; i < USERS; i++) {
    const ttlMs = 20_000 + Math.floor((40_000 * i) / USERS);
    const u = await h.seedManaged({ ttlMs });
    users.push({ ...u, firstExpiry: Date.now() + ttlMs });
  }
  await useTokens(h, users);
  // 200 users with 20–60 s tokens need ~8 refreshes/s on average, more than the default budget of
  // 450/min (7.5/s), which is sized for Cal.com's 60-minute tokens: workerEnv raises it to 3000/min.
  worker = await startWorker(workerEnv(h, prefix));

  const me = (t: string) => fetch(`${h.fake.url}/v2/me`, { headers: { authorization: `Bearer ${t}` } });
  const statuses = new Map<number, number>();
  let requests = 0;
  let waitedOnRefresh = 0;
  const endAt = Math.max(...users.map((u) => u.firstExpiry)) + 3_000;
  while (Date.now() < endAt) {
    const batch = Array.from({ length: 10 }, () => users[Math.floor(Math.random() * users.length)]!);
    await Promise.all(
      batch.map(async (u) => {
        const tok = await h.client.ensureValidCalToken(u.userUlid);
        if (!tok.success || !tok.tokenInfo) throw new Error(`no token: ${tok.error?.code}`);
        if (tok.refreshed) waitedOnRefresh += 1;
        const res = await h.client.handleCalApiResponse(await me(tok.tokenInfo.accessToken), me, u.userUlid, {
          accessToken: tok.tokenInfo.accessToken,
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        requests += 1;
      }),
    );
    await sleep(100);
  }

  expect(requests).toBeGreaterThan(1_000);
  expect(Object.fromEntries(statuses)).toEqual({ 200: requests });
  expect(h.fake.stats().status498).toBe(0);
  expect(waitedOnRefresh).toBe(0);
  // Every user was refreshed by the worker before the first token expired.
  const firstRefresh = await h.db.calTokenAudit.groupBy({
    by: ["userUlid"],
    where: { outcome: "REFRESHED", trigger: "worker" },
    _min: { createdAt: true },
  });
  const byUser = new Map(firstRefresh.map((r) => [r.userUlid, r._min.createdAt!.getTime()]));
  const late = users.filter((u) => !(byUser.get(u.userUlid)! < u.firstExpiry));
  expect(late).toEqual([]);
  expect(h.fake.stats().deadRefreshTokenUses).toBe(0);
}, 120_000);
