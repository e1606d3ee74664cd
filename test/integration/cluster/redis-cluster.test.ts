/**
 * The whole service on a Redis Cluster (docs/operations.md#redis-cluster): a local three-master
 * cluster on loopback ports, REDIS_CLUSTER=true with REDIS_URL naming one node, a hash-tagged
 * QUEUE_PREFIX. The worker (in-process) refreshes proactively and through the sweep; the on-demand
 * client refreshes inline and through requestCalTokenRefresh; a held pair goes into the cluster and
 * is flushed from it; the fleet gates' scripts run there; pair changes reach another client's token
 * cache over the cluster's pub/sub; the CLI and Bull Board work. Every key of the prefix ends on one
 * node, which is what the hash tag is for; without one, a multi-key script is refused (CROSSSLOT).
 */
import { randomBytes } from "node:crypto";
import { Cluster } from "ioredis";
import { ulid } from "ulid";
import { captureIo } from "../../../src/cli/io.js";
import { runCli } from "../../../src/cli/program.js";
import { loadConfig } from "../../../src/config/config.js";
import { createRedisCallBudget } from "../../../src/fleet/call-budget.js";
import { createRedisConfigBreaker } from "../../../src/fleet/config-breaker.js";
import { fleetRedis, type RedisClient } from "../../../src/queue/connection.js";
import { QUEUES, SWEEP_SCHEDULER_ID } from "../../../src/queue/names.js";
import { heldPairKeys, PUT } from "../../../src/store/held-pair-keys.js";
import type { CalTokenClient } from "../../../src/wiring/cal-token-client.js";
import { startWebApp, type WebApp } from "../../../src/wiring/web-app.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { recordForSecretScan, testLogger } from "../../support/log-sink.js";
import { type RedisCluster, startRedisCluster } from "../../support/redis-cluster.js";
import { startTcpProxy, type TcpProxy, viaProxy } from "../../support/tcp-proxy.js";
import { eventually, sleep, startWorker, useTokens, workerEnv } from "../../support/worker-harness.js";

const prefix = `{${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}c${randomBytes(3).toString("hex")}}`;
const BOARD = { BULL_BOARD_USERNAME: "ops", BULL_BOARD_PASSWORD: "cluster-board-pass" };

let cluster: RedisCluster | undefined;
let h: Harness | undefined;
let proxy: TcpProxy | undefined;
let worker: WorkerApp | undefined;
let web: WebApp | undefined;
/** Our own fleet client (a Cluster), as the service builds it. */
let fleet: RedisClient | undefined;
/** A plain ioredis Cluster, independent of our code, to look at what landed where. */
let probe: Cluster | undefined;

beforeAll(async () => {
  cluster = await startRedisCluster();
  h = await startHarness({ ownDatabase: true, env: { REDIS_URL: cluster.url, REDIS_CLUSTER: "true", QUEUE_PREFIX: prefix } });
  const db = new URL(h.databaseUrl);
  proxy = await startTcpProxy(db.hostname, Number(db.port || 5432));
  const config = loadConfig(h.env());
  expect(config).toMatchObject({ redisCluster: true, queuePrefix: prefix });
  fleet = fleetRedis(config);
  probe = new Cluster([{ host: "127.0.0.1", port: cluster.ports[0]! }], { lazyConnect: true });
}, 60_000);

afterAll(async () => {
  // Closing needs Redis: bounded, so a failure above cannot hang here; the cluster is killed regardless.
  const closeAll = (async () => {
    await web?.close();
    await worker?.close();
    proxy?.restore();
    await h?.close();
    fleet?.disconnect();
    probe?.disconnect();
    await proxy?.close();
  })();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closeAll.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 15_000)))]);
  clearTimeout(timer);
  await cluster?.stop();
}, 30_000);

const harness = (): Harness => h as Harness;

/** The user holds a pair newer than the one seeded (never prints a token). */
async function rotated(u: SeededUser): Promise<boolean> {
  const row = await harness().db.calToken.findUnique({ where: { userUlid: u.userUlid }, select: { version: true } });
  return (row?.version ?? 0) > 1;
}

async function makeDueIn(users: SeededUser[], ms: number): Promise<void> {
  await harness().db.calToken.updateMany({
    where: { userUlid: { in: users.map((u) => u.userUlid) } },
    data: { nextRefreshAt: new Date(Date.now() + ms) },
  });
}

/** Returns once `client` serves from memory (its pair-change subscription is up): proven by a change it does not see. */
async function untilCacheLive(client: CalTokenClient): Promise<CalTokenClient> {
  const u = await harness().seedManaged();
  for (let i = 0; i < 200; i++) {
    await client.ensureValidCalToken(u.userUlid);
    const moved = new Date(Date.now() + 7_200_000 + i);
    await harness().db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: moved } });
    const again = await client.ensureValidCalToken(u.userUlid);
    if (again.success && again.tokenInfo?.accessTokenExpiresAt.getTime() !== moved.getTime()) return client;
    await sleep(25);
  }
  throw new Error("the token cache never went live on the cluster");
}

/** Drops every pub/sub connection on every node of the cluster. */
async function killPubSubConnections(): Promise<void> {
  for (const node of probe!.nodes("master")) await node.call("CLIENT", "KILL", "TYPE", "pubsub");
}

it("a multi-key script needs the hash tag: without one the cluster refuses it (CROSSSLOT)", async () => {
  const keys = heldPairKeys("plain");
  let user = ulid();
  const slot = (k: string) => probe!.cluster("KEYSLOT", k) as Promise<number>;
  while ((await slot(keys.record(user))) === (await slot(keys.index))) user = ulid();
  await expect(probe!.eval(PUT, 2, keys.record(user), keys.index, "x", 60, Date.now(), user)).rejects.toThrow(/CROSSSLOT/);
  // Under the hash-tagged prefix the same script runs.
  const tagged = heldPairKeys(`{${prefix.slice(1, -1)}x}`);
  expect(await probe!.eval(PUT, 2, tagged.record(user), tagged.index, "x", 60, Date.now(), user)).toBe(1);
});

it("the fleet gates' scripts run on the cluster: the breaker opens, hands out one probe and closes; the budget counts", async () => {
  const scratch = `{${prefix.slice(1, -1)}gates}`; // not the service's prefix: tripping it must stop nothing
  const breaker = createRedisConfigBreaker({
    redis: fleet!,
    prefix: scratch,
    timing: { probeDelayMs: 50, maxProbeDelayMs: 1_000, probeLeaseMs: 1_000 },
  });
  const now = new Date();
  expect(await breaker.trip("test: refused", now)).toBe("opened");
  expect(await breaker.trip("test: refused again", now)).toBe("still_open");
  expect(await breaker.state(now)).toMatchObject({ open: true, reason: "test: refused again" });
  expect(await breaker.claimProbe(now)).toBe(false); // not due yet
  const later = new Date(now.getTime() + 5_000);
  expect(await breaker.claimProbe(later)).toBe(true);
  expect(await breaker.claimProbe(later)).toBe(false); // one prober at a time
  expect(await breaker.close(later)).toBe(true);
  expect(await breaker.state(now)).toEqual({ open: false });

  const budget = createRedisCallBudget({ redis: fleet!, prefix: scratch, ratePerMinute: 3, reserve: 1 });
  expect(await budget.take("background", new Date())).toEqual({ ok: true });
  expect(await budget.take("background", new Date())).toEqual({ ok: true });
  const refused = await budget.take("background", new Date());
  expect(refused.ok).toBe(false);
  expect(refused.ok === false && refused.retryAfterMs > 0).toBe(true);
  expect(await budget.take("request", new Date())).toEqual({ ok: true }); // the reserve is for request paths
  expect((await budget.take("request", new Date())).ok).toBe(false);
});

it("an on-demand refresh runs inline; a change anywhere drops the token another client has in memory (pub/sub)", async () => {
  // Inline: an expired access token, no worker running.
  const u = await harness().seedManaged();
  await harness().db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
  const inline = await harness().client.ensureValidCalToken(u.userUlid);
  expect(inline).toMatchObject({ success: true, refreshed: true });
  expect(harness().fake.isAccessTokenValid(inline.tokenInfo!.accessToken)).toBe(true);
  // That call took from the shared budget, a hash under the service's prefix on the cluster.
  expect(await probe!.exists(`${prefix}:fleet:call-budget`)).toBe(1);

  // Pub/sub: A serves a fresh token from memory; B force-refreshes; A hears it and drops its copy.
  const a = await untilCacheLive(harness().newClient({ TOKEN_CACHE_SECONDS: "30" }));
  const v = await harness().seedManaged();
  await sleep(50); // the save's own message is delivered
  const first = await a.ensureValidCalToken(v.userUlid);
  expect(first.tokenInfo?.accessToken).toBe(v.accessToken);
  const b = harness().newClient({ TOKEN_CACHE_SECONDS: "30" });
  const forced = await b.ensureValidCalToken(v.userUlid, true);
  expect(forced).toMatchObject({ success: true, refreshed: true });
  const started = Date.now();
  let seen = "";
  while (Date.now() - started < 2_000) {
    seen = (await a.ensureValidCalToken(v.userUlid)).tokenInfo?.accessToken ?? "";
    if (seen === forced.tokenInfo?.accessToken) break;
    await sleep(5);
  }
  const staleForMs = Date.now() - started;
  expect(seen).toBe(forced.tokenInfo?.accessToken);
  expect(staleForMs).toBeLessThan(500);
  process.stdout.write(`cluster pub/sub: a force-refresh elsewhere reached the other client's cache after ${staleForMs} ms\n`);

  // The subscription drops: A stops serving from memory at once (it may have missed a change) …
  const w = await harness().seedManaged();
  await sleep(50);
  await a.ensureValidCalToken(w.userUlid);
  const behind = new Date(Date.now() + 7_100_000);
  await harness().db.calToken.update({ where: { userUlid: w.userUlid }, data: { accessTokenExpiresAt: behind } });
  expect((await a.ensureValidCalToken(w.userUlid)).tokenInfo?.accessTokenExpiresAt).not.toEqual(behind); // from memory
  await killPubSubConnections();
  const readsRow = async () => (await a.ensureValidCalToken(w.userUlid)).tokenInfo?.accessTokenExpiresAt.getTime() === behind.getTime();
  expect(await eventually(readsRow, 1_000, 10)).toBe(true);
  // … and serves from memory again once it has resubscribed.
  await untilCacheLive(a);
});

it("a pair the database did not take is held in the cluster and flushed from it by another process", async () => {
  const hh = harness();
  const u = await hh.seedManaged();
  await hh.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
  const stranded = hh.newClient({ DATABASE_URL: viaProxy(hh.databaseUrl, proxy!), ON_DEMAND_WAIT_MS: "20000" });
  hh.fake.resetStats();
  hh.fake.faults.latencyMs = 400;
  try {
    const pending = stranded.ensureValidCalToken(u.userUlid);
    for (let i = 0; i < 500 && (hh.fake.stats().calls["managed.refresh"] ?? 0) === 0; i++) await sleep(10);
    expect(hh.fake.stats().calls["managed.refresh"]).toBe(1);
    proxy!.cut(); // this process never reaches the database again
    const res = await pending;
    expect(res).toMatchObject({ success: true, refreshed: true });

    const keys = heldPairKeys(prefix);
    const raw = await probe!.get(keys.record(u.userUlid));
    expect(raw).toMatch(/^v2\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){4}$/); // the encrypted record, in the cluster
    expect(await probe!.zrange(keys.index, "0", "-1")).toContain(u.userUlid);

    // Another process needs the user: it writes the held pair instead of refreshing with the dead token.
    const other = await hh.client.ensureValidCalToken(u.userUlid);
    expect(other).toMatchObject({ success: true, tokenInfo: { accessToken: res.tokenInfo!.accessToken } });
    expect(await hh.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } })).toMatchObject({ version: 2, status: "ACTIVE" });
    expect(await probe!.get(keys.record(u.userUlid))).toBeNull();
    expect(await probe!.zrange(keys.index, "0", "-1")).not.toContain(u.userUlid);
    const audits = await hh.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid } });
    expect(audits.map((a) => a.outcome)).toContain("RECOVERED");
    expect(hh.fake.stats()).toMatchObject({ refreshes: 1, forceRefreshes: 0, deadRefreshTokenUses: 0 });
  } finally {
    hh.fake.faults.latencyMs = 0;
    proxy!.restore();
  }
}, 30_000);

it("the worker refreshes proactively and through the sweep; requestCalTokenRefresh waits for it; so does the CLI", async () => {
  const hh = harness();
  const env = workerEnv(hh, prefix, { REDIS_URL: cluster!.url, REDIS_CLUSTER: "true" });
  worker = await startWorker(env);

  // Proactive: tokens that expire in seconds, scheduled by their save.
  const soon: SeededUser[] = [];
  for (let i = 0; i < 3; i++) soon.push(await hh.seedManaged({ ttlMs: 8_000 }));
  // The sweep: users whose delayed job is ~45 min away; only the sweep can find them when they are due now.
  const swept: SeededUser[] = [];
  for (let i = 0; i < 3; i++) swept.push(await hh.seedManaged());
  // All in use (a request path used their tokens): the worker keeps them fresh.
  await useTokens(hh, [...soon, ...swept]);
  await makeDueIn(swept, 1_000);
  const all = [...soon, ...swept];
  expect(await eventually(async () => (await Promise.all(all.map(rotated))).every(Boolean), 20_000, 250)).toBe(true);
  expect(await worker.sweepQueue.getJobScheduler(SWEEP_SCHEDULER_ID)).toBeTruthy();
  const audits = await hh.db.calTokenAudit.findMany({ where: { userUlid: { in: swept.map((u) => u.userUlid) } } });
  expect(audits.filter((a) => a.outcome === "REFRESHED").length).toBe(swept.length);

  // On request, waiting for the worker.
  const r = await hh.seedManaged();
  const res = await hh.client.requestCalTokenRefresh(r.userUlid, { wait: true, timeoutMs: 10_000 });
  expect(res).toMatchObject({ success: true, refreshed: true, tokenInfo: { userUlid: r.userUlid, status: "ACTIVE" } });
  expect(hh.fake.isAccessTokenValid(res.tokenInfo!.accessToken)).toBe(true);

  // The CLI on the same settings: a sweep, and a refresh waited for.
  const cli = async (args: string[]) => {
    const io = captureIo({ env: hh.env() });
    const code = await runCli(args, { io });
    const out = { code, out: io.out(), err: io.err() };
    recordForSecretScan(out);
    return out;
  };
  const sweep = await cli(["sweep", "--json"]);
  expect(sweep).toMatchObject({ code: 0 });
  expect(JSON.parse(sweep.out)).toMatchObject({ dryRun: false, complete: true });
  const c = await hh.seedManaged();
  const refreshed = await cli(["refresh", c.userUlid, "--wait", "--json"]);
  expect(refreshed).toMatchObject({ code: 0 });
  expect(JSON.parse(refreshed.out)).toMatchObject({ userUlid: c.userUlid, refreshed: true, status: "ACTIVE" });
  expect(hh.fake.stats().deadRefreshTokenUses).toBe(0);
}, 45_000);

it("Bull Board lists the three queues from the cluster; /readyz sees it", async () => {
  const config = loadConfig(harness().env(BOARD));
  web = await startWebApp(config, { logger: testLogger().logger, host: "127.0.0.1", port: 0 });
  const auth = { authorization: `Basic ${Buffer.from(`${BOARD.BULL_BOARD_USERNAME}:${BOARD.BULL_BOARD_PASSWORD}`).toString("base64")}` };
  const res = await fetch(`${web.boardUrl}/api/queues`, { headers: auth });
  expect(res.status).toBe(200);
  type Listed = { queues: { name: string; counts: Record<string, number> }[] };
  const body = (await res.json()) as Listed;
  expect(body.queues.map((q) => q.name).sort()).toEqual([QUEUES.events, QUEUES.refresh, QUEUES.sweep].sort());
  const refresh = body.queues.find((q) => q.name === QUEUES.refresh)!;
  expect((refresh.counts.completed ?? 0) + (refresh.counts.delayed ?? 0)).toBeGreaterThan(0); // the jobs of the tests above
  const ready = await fetch(`${web.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toMatchObject({ checks: { postgres: "ok", redis: "ok" } });
});

it("every key of the prefix is on one node: the hash tag put them in one slot", async () => {
  const perNode: Record<string, number> = {};
  for (const node of probe!.nodes("master")) {
    let cursor = "0";
    let n = 0;
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== "0");
    perNode[`${node.options.host}:${node.options.port}`] = n;
  }
  const withKeys = Object.values(perNode).filter((n) => n > 0);
  expect(withKeys).toHaveLength(1);
  expect(withKeys[0]).toBeGreaterThan(10); // queues, jobs, the scheduler, the budget…
  expect(Object.keys(perNode)).toHaveLength(3);
});

it("closing the web app, the worker and every client leaves no connection open on the cluster", async () => {
  await web?.close();
  web = undefined;
  await worker?.close();
  worker = undefined;
  proxy?.restore();
  await h?.close();
  h = undefined;
  fleet?.disconnect();
  fleet = undefined;
  await probe!.ping(); // connected (it is lazy), so it knows the three masters
  expect(probe!.nodes("master")).toHaveLength(3);
  const others = async () => {
    let n = 0;
    for (const node of probe!.nodes("master")) {
      const own = String(await node.call("CLIENT", "ID"));
      const list = String(await node.call("CLIENT", "LIST"));
      n += list.split("\n").filter((l) => l.startsWith("id=") && !l.startsWith(`id=${own} `)).length;
    }
    return n;
  };
  expect(await eventually(async () => (await others()) === 0, 3_000, 50)).toBe(true);
});
