/**
 * Benchmarks of the background worker (src/main/worker-app.ts, jobs/, src/queue): proactive vs
 * reactive refreshing under a request load, refresh throughput against BullMQ's own no-op job rate,
 * the sweep on tables of 10k → 1M rows, a queued refresh vs an inline one, and Redis memory per
 * scheduled user. Every figure is relative to a baseline measured in the same run (interleaved where
 * the two can run side by side); absolute numbers are context.
 *
 * Each section empties cal_token first (the sweep would otherwise enqueue the rows other sections
 * left), uses its own BullMQ prefix under the run's (`ctwbench<pid>…`, keys deleted at the end) and,
 * where it refreshes a lot, its own fake Cal.com (so the fake's per-refresh purge loop only sees
 * this section's tokens).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import { Queue, QueueEvents, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { ulid } from "ulid";
import { createSweep } from "../jobs/sweep.js";
import type { CalcomClient } from "../src/calcom/client.js";
import { createCalcomClientFromConfig } from "../src/main/refresh-stack.js";
import { loadConfig, type Config } from "../src/config/config.js";
import { computeNextRefreshAt } from "../src/core/policy.js";
import type { TokenStore } from "../src/core/ports.js";
import { startWorkerApp, type WorkerApp } from "../src/main/worker-app.js";
import type { CalTokenClient } from "../src/ondemand/client.js";
import { workerConnection } from "../src/queue/connection.js";
import { JOB_NAMES, PRIORITY, QUEUES, type RefreshJobData } from "../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS, createRefreshQueue, scheduleRefresh } from "../src/queue/refresh-queue.js";
import type { OutcomeEvent } from "../src/refresh/types.js";
import { createTokenCipher } from "../src/store/token-cipher.js";
import { createTokenStore } from "../src/store/token-store.js";
import { startFakeCalcom, type FakeCalcom } from "../test/fakes/calcom/index.js";
import { deleteRedisKeys } from "./lib/setup.js";
import { median, pairedDiff, quantile, summarize } from "./lib/stats.js";
import type { BenchContext, Row, Section } from "./lib/types.js";
import { seedManagedUser } from "../test/support/seed.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// shared helpers
// ---------------------------------------------------------------------------------------------

/** Deterministic PRNG (mulberry32), so every run draws the same users and lifetimes. */
function prng(seed: number): () => number {
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
async function sqlClient(ctx: BenchContext): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: ctx.databaseUrl });
  await c.connect();
  ctx.defer(() => c.end());
  return c;
}

/** Empties the token tables (audit rows cascade) so the sweep only sees this section's rows. */
async function emptyTables(sql: pg.Client): Promise<void> {
  await sql.query("TRUNCATE cal_token, cal_token_audit, cal_token_event");
}

/** A BullMQ prefix of the section's own, under the run's; its keys are deleted when the section ends. */
function sectionPrefix(ctx: BenchContext, suffix: string): string {
  const prefix = `${ctx.queuePrefix}${suffix}`;
  ctx.defer(async () => {
    const n = await deleteRedisKeys(ctx.redisUrl, prefix);
    ctx.progress(`deleted ${n} Redis keys under ${prefix}`);
  });
  return prefix;
}

async function ownFake(ctx: BenchContext): Promise<FakeCalcom> {
  const fake = await startFakeCalcom({ rateLimit: false });
  ctx.defer(() => fake.close());
  return fake;
}

/** Seeds users in `fake` and stores them through `client` (saveCalTokens also schedules their job). */
async function seedUsers(client: CalTokenClient, fake: FakeCalcom, ttls: (number | undefined)[], parallel = 20): Promise<string[]> {
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

async function startWorker(ctx: BenchContext, config: Config, onOutcome?: (e: OutcomeEvent) => void): Promise<WorkerApp> {
  const app = await startWorkerApp(config, { logger: ctx.logger, retryBaseMs: 200, watchdogStallMs: 0, ...(onOutcome ? { onOutcome } : {}) });
  ctx.defer(() => app.close());
  return app;
}

/** Waits until the worker's first sweep (the scheduler runs one at start) has finished. */
async function firstSweepDone(app: WorkerApp, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const c = await app.sweepQueue.getJobCounts("completed", "failed");
    if ((c.completed ?? 0) + (c.failed ?? 0) > 0) return true;
    await sleep(100);
  }
  return false;
}

function fmtMs(ms: number): string {
  return `${ms.toFixed(ms >= 10 ? 1 : ms >= 1 ? 2 : 3)} ms`;
}

function fmtBytes(b: number): string {
  if (b >= 1024 * 1024) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b.toFixed(0)} B`;
}

// ---------------------------------------------------------------------------------------------
// proactive-vs-reactive
// ---------------------------------------------------------------------------------------------

const PVR = {
  users: 1_000,
  ttlMinMs: 30_000,
  ttlMaxMs: 60_000,
  /** ensureValidCalToken calls per second, open loop, uniformly random user. */
  rate: 50,
  /** Phase A starts after this much load (discarded), so the reactive pattern is established. */
  settleMs: 10_000,
  phaseMs: 60_000,
  /** After the worker started, before phase B is measured. */
  warmupMs: 20_000,
  bufferS: 3,
  concurrency: 10,
  sweepS: 5,
};

interface CallSample {
  /** ms since the load started. */
  at: number;
  ms: number;
  /** The row the call read was expired or within the on-demand buffer: the caller waited on a refresh. */
  waited: boolean;
  /** result.refreshed: the caller did the refresh itself. */
  refreshed: boolean;
  ok: boolean;
  /** Remaining lifetime of the token the call read (ms), when it read one. */
  leftMs: number;
  /** How late the open-loop scheduler fired the call (ms). */
  lagMs: number;
}

async function proactiveVsReactive(ctx: BenchContext): Promise<Row[]> {
  const sql = await sqlClient(ctx);
  await emptyTables(sql);
  const fake = await ownFake(ctx);
  const prefix = sectionPrefix(ctx, "pvr");
  const config = loadConfig(
    ctx.env({
      CAL_API_URL: fake.url,
      QUEUE_PREFIX: prefix,
      ON_DEMAND_BUFFER_SECONDS: String(PVR.bufferS),
      WORKER_CONCURRENCY: String(PVR.concurrency),
      // 1,000 users with 30–60 s tokens need ~40 refreshes/s; the default budget (450/min) is for 60-min tokens.
      CAL_REFRESH_RATE_PER_MINUTE: "60000",
      SWEEP_INTERVAL_SECONDS: String(PVR.sweepS),
    }),
  );
  const bufferMs = config.refresh.onDemandBufferMs;

  // The client's own composition, with store.get observed per call (AsyncLocalStorage): the first row
  // a call reads decides (decideOnDemand) whether it goes down the refresh path, i.e. waits.
  const als = new AsyncLocalStorage<{ leftMs?: number }>();
  const prisma = ctx.createPrisma(10);
  const realStore = createTokenStore({ prisma, cipher: createTokenCipher(config.encryptionKeys) });
  const store: TokenStore = {
    ...realStore,
    async get(u) {
      const token = await realStore.get(u);
      const rec = als.getStore();
      if (rec && rec.leftMs === undefined && token) rec.leftMs = token.accessTokenExpiresAt.getTime() - Date.now();
      return token;
    },
  };
  const inlineRefreshes: number[] = [];
  const workerRefreshes: number[] = [];
  let t0 = performance.now();
  const isRefresh = (e: OutcomeEvent) => e.outcome === "REFRESHED" || e.outcome === "FORCE_REFRESHED";
  const client = ctx.createClient({
    config,
    prisma,
    store,
    onOutcome: (e) => void (isRefresh(e) && inlineRefreshes.push(performance.now() - t0)),
  });

  const rand = prng(20261125);
  const ttls = Array.from({ length: PVR.users }, () => Math.round(PVR.ttlMinMs + rand() * (PVR.ttlMaxMs - PVR.ttlMinMs)));
  ctx.progress(`seeding ${PVR.users} users with ${PVR.ttlMinMs / 1000}–${PVR.ttlMaxMs / 1000} s tokens`);
  const users = await seedUsers(client, fake, ttls);
  // Steady state from the start: every token somewhere in its life (uniform), not all fresh at once.
  const now = new Date();
  const exp = ttls.map((ttl) => new Date(now.getTime() + Math.round(rand() * ttl)));
  const next = exp.map((e) => computeNextRefreshAt(e, now, config.refresh.leadMs, config.refresh.jitterMs, rand));
  await sql.query(
    `UPDATE cal_token c SET access_token_expires_at = v.e, next_refresh_at = v.n
     FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS v(u, e, n) WHERE c.user_ulid = v.u`,
    [users, exp.map((d) => d.toISOString()), next.map((d) => d.toISOString())],
  );

  // ---- open-loop load, one run across both phases ----
  const samples: CallSample[] = [];
  const inflight = new Set<Promise<void>>();
  let running = true;
  const pick = prng(7);
  const interval = 1000 / PVR.rate;
  const call = async (u: string, lagMs: number) => {
    const rec: { leftMs?: number } = {};
    const start = performance.now();
    const r = await als.run(rec, () => client.ensureValidCalToken(u));
    const ms = performance.now() - start;
    const leftMs = rec.leftMs ?? Number.NaN;
    samples.push({ at: start - t0, ms, waited: leftMs <= bufferMs, refreshed: r.refreshed, ok: r.success, leftMs, lagMs });
  };
  t0 = performance.now();
  const load = (async () => {
    for (let k = 0; running; k++) {
      const due = t0 + k * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (!running) break;
      const p = call(users[Math.floor(pick() * users.length)] as string, Math.max(0, performance.now() - due)).catch(() => undefined);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  })();

  ctx.progress(`phase A (worker off): ${PVR.settleMs / 1000} s settle + ${PVR.phaseMs / 1000} s measured, ${PVR.rate} calls/s`);
  await sleep(PVR.settleMs + PVR.phaseMs);
  const aStart = PVR.settleMs;
  const aEnd = performance.now() - t0;
  let app: WorkerApp;
  const workerStartT0 = performance.now();
  try {
    app = await startWorker(ctx, config, (e) => void (isRefresh(e) && workerRefreshes.push(performance.now() - t0)));
  } catch (err) {
    running = false;
    await load;
    throw err;
  }
  const workerStartMs = performance.now() - workerStartT0;
  const bStart = performance.now() - t0 + PVR.warmupMs;
  ctx.progress(`worker on; warm-up ${PVR.warmupMs / 1000} s, then phase B ${PVR.phaseMs / 1000} s`);
  await sleep(PVR.warmupMs + PVR.phaseMs);
  const bEnd = performance.now() - t0;
  running = false;
  await load;
  await Promise.allSettled([...inflight]);
  const stats = fake.stats();
  await app.close();

  const inWindow = (from: number, to: number) => samples.filter((s) => s.at >= from && s.at < to);
  const A = inWindow(aStart, aEnd);
  const W = inWindow(aEnd, bStart);
  const B = inWindow(bStart, bEnd);
  const count = (xs: number[], from: number, to: number) => xs.filter((t) => t >= from && t < to).length;
  const waited = (xs: CallSample[]) => xs.filter((s) => s.waited).length;
  const refreshedBy = (xs: CallSample[]) => xs.filter((s) => s.refreshed).length;
  const failed = [...A, ...W, ...B].filter((s) => !s.ok).length;
  const sA = summarize(A.map((s) => s.ms));
  const sB = summarize(B.map((s) => s.ms));
  const waitedA = A.filter((s) => s.waited).map((s) => s.ms);
  const freshA = A.filter((s) => !s.waited).map((s) => s.ms);
  const leftB = B.map((s) => s.leftMs).filter(Number.isFinite);
  const lags = samples.map((s) => s.lagMs);
  const secs = (a: number, b: number) => (b - a) / 1000;
  const rateOf = (xs: CallSample[], a: number, b: number) => xs.length / secs(a, b);

  ctx.note(
    `${PVR.users} users, access tokens of ${PVR.ttlMinMs / 1000}–${PVR.ttlMaxMs / 1000} s (the fake's per-user TTL, so refreshed tokens keep it), expiries staggered uniformly over each token's life at the start. ` +
      `Load: ${PVR.rate} ensureValidCalToken calls/s, open loop (a call is fired every ${interval} ms whether or not earlier ones returned), uniformly random user, one run across both phases: ` +
      `${PVR.settleMs / 1000} s settle, phase A ${secs(aStart, aEnd).toFixed(0)} s (worker off), worker started in-process (${workerStartMs.toFixed(0)} ms), ${PVR.warmupMs / 1000} s warm-up, phase B ${secs(bStart, bEnd).toFixed(0)} s. ` +
      `ON_DEMAND_BUFFER_SECONDS=${PVR.bufferS}, WORKER_CONCURRENCY=${PVR.concurrency}, SWEEP_INTERVAL_SECONDS=${PVR.sweepS}, CAL_REFRESH_RATE_PER_MINUTE raised to 60000 (the compressed time scale needs ~${Math.round(PVR.users / (0.6 * ((PVR.ttlMinMs + PVR.ttlMaxMs) / 2000)))} refreshes/s; 1,000 users with 60-min tokens need 0.3/s).`,
  );
  ctx.note(
    `"Waited" = the row the call read was expired or within the ${PVR.bufferS} s buffer, so ensureValidCalToken went down the refresh path (its own refresh, a joined one, or waiting out another holder's lease); observed by wrapping store.get. ` +
      `result.refreshed (the caller refreshed itself) counts ${refreshedBy(A)} in A and ${refreshedBy(B)} in B.`,
  );
  ctx.note(
    `Refreshes: ${count(inlineRefreshes, aStart, aEnd)} inline in phase A (${(count(inlineRefreshes, aStart, aEnd) / secs(aStart, aEnd)).toFixed(1)}/s); ` +
      `in phase B ${count(workerRefreshes, bStart, bEnd)} by the worker (${(count(workerRefreshes, bStart, bEnd) / secs(bStart, bEnd)).toFixed(1)}/s) and ${count(inlineRefreshes, bStart, bEnd)} inline; ` +
      `warm-up: ${count(workerRefreshes, aEnd, bStart)} by the worker, ${count(inlineRefreshes, aEnd, bStart)} inline, ${waited(W)} of ${W.length} calls waited. ` +
      `Fake: ${stats.refreshes} refreshes, ${stats.forceRefreshes} force-refreshes, ${stats.deadRefreshTokenUses} uses of a rotated refresh token (must be 0). Failed calls: ${failed}.`,
  );
  ctx.note(
    `Phase A latency: p50 ${fmtMs(median(freshA))} for calls on a fresh token, p50 ${fmtMs(median(waitedA))} / p99 ${fmtMs(quantile(waitedA, 0.99))} for the ${waitedA.length} that refreshed inline. ` +
      `The worker runs in the same Node process as the load (as the brief asks), so its refresh work shares the event loop with the measured calls; a separate worker dyno would not cost the web process that.`,
  );
  ctx.note(
    `Open-loop scheduler lag p50 ${fmtMs(median(lags))}, p99 ${fmtMs(quantile(lags, 0.99))} (a late timer on a busy 2-core box; latencies are measured from the actual call start). ` +
      `Section length is dominated by the two ${PVR.phaseMs / 1000} s phases plus settle and warm-up (~${((PVR.settleMs + 2 * PVR.phaseMs + PVR.warmupMs) / 1000).toFixed(0)} s).`,
  );

  return [
    { metric: "phase A (worker off): calls", value: A.length, unit: "", detail: `${rateOf(A, aStart, aEnd).toFixed(1)} calls/s achieved` },
    { metric: "phase A: share of calls that waited on a refresh", value: (100 * waited(A)) / A.length, unit: "%", detail: `${waited(A)} of ${A.length}; the reactive baseline` },
    { metric: "phase A: latency p50", value: sA.p50, unit: "ms", detail: "all calls of the phase" },
    { metric: "phase A: latency p99", value: sA.p99, unit: "ms", detail: "" },
    { metric: "phase B (worker on): calls", value: B.length, unit: "", detail: `${rateOf(B, bStart, bEnd).toFixed(1)} calls/s achieved, after ${PVR.warmupMs / 1000} s warm-up` },
    {
      metric: "phase B: share of calls that waited on a refresh",
      value: (100 * waited(B)) / B.length,
      unit: "%",
      goal: { op: "<=", target: 0 },
      detail: `${waited(B)} of ${B.length}`,
    },
    { metric: "phase B: latency p50", value: sB.p50, unit: "ms", detail: "all calls of the phase" },
    { metric: "phase B: latency p99", value: sB.p99, unit: "ms", detail: "" },
    { metric: "latency p50 ratio (B / A)", value: sB.p50 / sA.p50, unit: "×", detail: "" },
    { metric: "latency p99 ratio (B / A)", value: sB.p99 / sA.p99, unit: "×", detail: "A's p99 is an inline refresh; B's is a hot-path read" },
    {
      metric: "phase B: smallest token lifetime left at a call",
      value: (leftB.length ? Math.min(...leftB) : Number.NaN) / 1000,
      unit: "s",
      detail: `p1 ${(quantile(leftB, 0.01) / 1000).toFixed(1)} s, p50 ${(median(leftB) / 1000).toFixed(1)} s; the buffer is ${PVR.bufferS} s`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// worker-throughput
// ---------------------------------------------------------------------------------------------

const TP = {
  users: 2_000,
  /** Concurrency → rounds (each round runs the real worker and the no-op worker once, order alternating). */
  plan: [
    { concurrency: 10, rounds: 3 },
    { concurrency: 50, rounds: 2 },
  ],
  /** Free Postgres connections needed before the C=50 pass is attempted (its pool is C + 2). */
  connectionHeadroom: 15,
  roundTimeoutMs: 120_000,
  /** Per concurrency, one unrecorded round of each arm this size first (JIT, pool connections). */
  warmupJobs: 500,
  /** Calls per round of the HTTP-only arm. */
  httpCalls: 1_000,
};

interface Drain {
  ms: number;
  cpuUs: number;
  results: Map<string, number>;
  failed: number;
}

/**
 * Adds `users.length` jobs to a paused queue, resumes it and times until the worker reports them all
 * finished. The queue is obliterated first, so every add is real and no earlier job interferes.
 */
async function drainRound(queue: Queue<RefreshJobData>, worker: Worker, users: string[], before?: () => Promise<void>): Promise<Drain> {
  await queue.pause();
  await queue.obliterate({ force: true });
  await queue.pause(); // obliterate removed the meta key, and the paused flag with it
  await before?.();
  const clock = () => new Date();
  const at = new Date();
  for (let i = 0; i < users.length; i += 250) {
    await Promise.all(users.slice(i, i + 250).map((u) => scheduleRefresh(queue, u, at, null, clock)));
  }
  const results = new Map<string, number>();
  let done = 0;
  let failed = 0;
  let finish: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (finish = resolve));
  const onCompleted = (_job: Job, value: unknown) => {
    const key = typeof value === "object" && value !== null && "result" in value ? String((value as { result: unknown }).result) : String(value);
    results.set(key, (results.get(key) ?? 0) + 1);
    if (++done === users.length) finish();
  };
  const onFailed = () => {
    failed++;
    if (++done === users.length) finish();
  };
  worker.on("completed", onCompleted);
  worker.on("failed", onFailed);
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await queue.resume();
    const timeout = sleep(TP.roundTimeoutMs).then(() => "timeout" as const);
    if ((await Promise.race([all.then(() => "done" as const), timeout])) === "timeout") {
      throw new Error(`only ${done} of ${users.length} jobs finished in ${TP.roundTimeoutMs / 1000} s`);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuUs: cpu.user + cpu.system, results, failed };
  } finally {
    worker.off("completed", onCompleted);
    worker.off("failed", onFailed);
  }
}

/**
 * The HTTP part of a refresh alone: `n` refreshManaged calls through the app's Cal.com client (got)
 * against the in-process fake, `concurrency` at a time, each with a fresh user's refresh token.
 */
async function httpRound(calcom: CalcomClient, fake: FakeCalcom, n: number, concurrency: number): Promise<Drain> {
  const tokens = Array.from({ length: n }, () => fake.createManagedUser().refreshToken);
  const results = new Map<string, number>();
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const r = await calcom.refreshManaged(tokens[next++] as string);
        results.set(r.kind, (results.get(r.kind) ?? 0) + 1);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuUs: cpu.user + cpu.system, results, failed: n - (results.get("refreshed") ?? 0) };
}

async function workerThroughput(ctx: BenchContext): Promise<Row[]> {
  const sql = await sqlClient(ctx);
  await emptyTables(sql);
  const fake = await ownFake(ctx);
  const prefix = sectionPrefix(ctx, "tp");
  const envFor = (concurrency: number) =>
    ctx.env({
      CAL_API_URL: fake.url,
      QUEUE_PREFIX: prefix,
      WORKER_CONCURRENCY: String(concurrency),
      CAL_REFRESH_RATE_PER_MINUTE: "1000000",
      // One sweep at start (the scheduler runs it at once), none while measuring.
      SWEEP_INTERVAL_SECONDS: "3600",
    });
  const client = ctx.createClient({ config: loadConfig(envFor(10)) });
  ctx.progress(`seeding ${TP.users} users`);
  const users = await seedUsers(client, fake, new Array<undefined>(TP.users).fill(undefined));
  await client.close();

  const rows: Row[] = [];
  const notes: string[] = [];
  const refreshesBefore = fake.stats().refreshes;
  let realRounds = 0;
  let httpRefreshes = 0;
  for (const { concurrency, rounds } of TP.plan) {
    const free = await sql.query<{ free: number }>(
      "SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)::int AS free",
    );
    const freeConns = free.rows[0]?.free ?? 0;
    if (concurrency > 10 && freeConns < concurrency + 2 + TP.connectionHeadroom) {
      notes.push(`C=${concurrency} skipped: only ${freeConns} free Postgres connections (the worker's pool would be ${concurrency + 2}).`);
      continue;
    }
    const config = loadConfig(envFor(concurrency));
    const app = await startWorker(ctx, config);
    if (!(await firstSweepDone(app))) notes.push(`C=${concurrency}: the worker's first sweep had not finished after 15 s.`);
    const noopName = "bench-noop";
    const noopQueue = new Queue<RefreshJobData>(noopName, { connection: workerConnection(ctx.redisUrl), prefix, defaultJobOptions: REFRESH_JOB_DEFAULTS });
    // The refresh worker's options (worker-app.ts), minus the backoff strategy (a no-op never fails).
    const noopWorker = new Worker<RefreshJobData>(noopName, async () => ({ result: "noop" }), {
      connection: workerConnection(ctx.redisUrl),
      prefix,
      concurrency,
      limiter: { max: config.refresh.ratePerMinute, duration: 60_000 },
      lockDuration: config.refresh.leaseMs,
      stalledInterval: Math.min(30_000, config.refresh.leaseMs),
    });
    noopWorker.on("error", () => undefined);
    noopQueue.on("error", () => undefined);
    await noopWorker.waitUntilReady();
    const calcom = createCalcomClientFromConfig(config, ctx.logger);
    const real: Drain[] = [];
    const noop: Drain[] = [];
    const http: Drain[] = [];
    const resetRows = async () => {
      // Every row due now, so the processor refreshes instead of rescheduling.
      await sql.query("UPDATE cal_token SET next_refresh_at = $1", [new Date().toISOString()]);
    };
    const arms = {
      real: (us: string[]) => drainRound(app.refreshQueue, app.refreshWorker as unknown as Worker, us, resetRows),
      noop: (us: string[]) => drainRound(noopQueue, noopWorker as unknown as Worker, us),
      http: async (us: string[]) => {
        const n = Math.min(us.length, TP.httpCalls);
        httpRefreshes += n;
        return httpRound(calcom, fake, n, concurrency);
      },
    };
    type ArmName = keyof typeof arms;
    const order: ArmName[] = ["real", "noop", "http"];
    try {
      ctx.progress(`C=${concurrency} warm-up: ${TP.warmupJobs} jobs per arm`);
      for (const a of order) {
        await arms[a](users.slice(0, TP.warmupJobs));
        if (a === "real") realRounds += TP.warmupJobs / TP.users;
      }
      for (let r = 0; r < rounds; r++) {
        const k = r % order.length;
        const rotated = [...order.slice(k), ...order.slice(0, k)];
        for (const which of r % 2 === 1 ? rotated.reverse() : rotated) {
          ctx.progress(`C=${concurrency} round ${r + 1}/${rounds}: ${which}`);
          const d = await arms[which](users);
          if (which === "real") realRounds++;
          (which === "real" ? real : which === "noop" ? noop : http).push(d);
        }
      }
    } finally {
      calcom.close();
      await noopWorker.close();
      await noopQueue.obliterate({ force: true }).catch(() => undefined);
      await noopQueue.close();
      await app.close();
    }

    const rate = (d: Drain) => (TP.users * 1000) / d.ms;
    const realRates = real.map(rate);
    const noopRates = noop.map(rate);
    const httpRates = http.map((d) => (TP.httpCalls * 1000) / d.ms);
    const httpCpu = median(http.map((d) => d.cpuUs / TP.httpCalls));
    const ratio = median(realRates) / median(noopRates);
    const perRound = median(realRates.map((x, i) => x / (noopRates[i] as number)));
    const cpuPerJob = (ds: Drain[]) => median(ds.map((d) => d.cpuUs / TP.users));
    const bad = [...real, ...http].flatMap((d) => [...d.results.entries()].filter(([k]) => k !== "refreshed").map(([k, n]) => `${k}: ${n}`));
    const failedJobs = [...real, ...noop, ...http].reduce((acc, d) => acc + d.failed, 0);
    if (bad.length > 0 || failedJobs > 0) notes.push(`C=${concurrency}: unexpected job results ${bad.join(", ") || "none"}; failed jobs ${failedJobs}.`);
    const how = `median of ${rounds} rounds of ${TP.users} jobs (${realRates.map((x) => x.toFixed(0)).join(", ")}/s)`;
    if (concurrency === 10) {
      notes.push(
        `Goal check (C=10): 0.25 × the no-op rate is ${Math.round(0.25 * median(noopRates))} refreshes/s, i.e. at most ${((4 * cpuPerJob(noop)) / 1000).toFixed(2)} ms of node CPU per refresh on this CPU-bound box; ` +
          `a refresh job took ${(cpuPerJob(real) / 1000).toFixed(2)} ms, of which the HTTP exchange with the in-process fake alone (got + the fake's server) ${(httpCpu / 1000).toFixed(2)} ms. ` +
          `A refresh job is 3 reads (getMeta, get, getMeta), 2 commits (lease; CAS + audit), an HTTP round trip and 2 Redis calls (dedup-key removal, delayed add) on top of BullMQ's own work, so a no-op job is not a reachable bar at 0.25.`,
      );
    }
    rows.push(
      { metric: `C=${concurrency}: refreshes/s, one worker process`, value: Math.round(median(realRates)), unit: "/s", detail: how },
      { metric: `C=${concurrency}: BullMQ no-op jobs/s (baseline)`, value: Math.round(median(noopRates)), unit: "/s", detail: `median of ${rounds} rounds (${noopRates.map((x) => x.toFixed(0)).join(", ")}/s), interleaved` },
      {
        metric: `C=${concurrency}: ratio (refresh / no-op)`,
        value: ratio,
        unit: "×",
        ...(concurrency === 10 ? { goal: { op: ">=" as const, target: 0.25 } } : {}),
        detail: `ratio of medians; median of per-round ratios ${perRound.toFixed(2)}×${concurrency === 10 ? "" : " (informational)"}`,
      },
      {
        metric: `C=${concurrency}: node CPU per job, refresh / no-op`,
        value: cpuPerJob(real) / cpuPerJob(noop),
        unit: "×",
        detail: `${(cpuPerJob(real) / 1000).toFixed(2)} ms vs ${(cpuPerJob(noop) / 1000).toFixed(2)} ms per job (this process: worker + fake Cal.com + BullMQ client)`,
      },
      {
        metric: `C=${concurrency}: HTTP refresh alone, calls/s`,
        value: Math.round(median(httpRates)),
        unit: "/s",
        detail: `${TP.httpCalls} refreshManaged calls through got against the in-process fake, interleaved; node CPU ${(httpCpu / 1000).toFixed(2)} ms per call (both ends) = ${((100 * httpCpu) / cpuPerJob(real)).toFixed(0)} % of a refresh job's`,
      },
      {
        metric: `C=${concurrency}: headroom over the default Cal.com budget`,
        value: (median(realRates) * 60) / 450,
        unit: "×",
        detail: "refreshes/s × 60 / CAL_REFRESH_RATE_PER_MINUTE default (450)",
      },
    );
  }
  const refreshed = fake.stats().refreshes - refreshesBefore - httpRefreshes;
  ctx.note(
    `Each round: the queue is paused and obliterated, ${TP.users} jobs are added exactly as the app adds them (scheduleRefresh: due now, deduplicated per user, the refresh job defaults), then the queue is resumed and the time until the worker reports all ${TP.users} finished is taken; per concurrency one unrecorded ${TP.warmupJobs}-job round of each arm first, then the arms in rotating order. ` +
      `Real: startWorkerApp in-process (its Prisma pool C + 2), every row's next_refresh_at set to now before the round so each job is a full refresh: getMeta, lease, HTTP refresh against the in-process fake (no latency, rate limit off), CAS + audit, getMeta, reschedule (a delayed add). ` +
      `Baseline: a Worker with the same concurrency, limiter and lock settings whose processor returns at once, on its own queue under the same prefix, same job options. CAL_REFRESH_RATE_PER_MINUTE=1000000 so the limiter never throttles.`,
  );
  ctx.note(
    `The fake Cal.com, Postgres and Redis all run on the same 2 cores as the worker: the refresh rate is a lower bound for a worker dyno talking to a remote Cal.com, and the ratio compares two CPU-bound loops on one box. ` +
      `${refreshed} refreshes hit the fake over ${realRounds} real rounds (expected ${realRounds * TP.users}).`,
  );
  for (const n of notes) ctx.note(n);
  return rows;
}

// ---------------------------------------------------------------------------------------------
// sweep-scaling
// ---------------------------------------------------------------------------------------------

const SW = {
  sizes: [10_000, 100_000, 1_000_000],
  due: 1_000,
  runs: 5,
  pageSize: 500,
};

/** Lehmer-style scatter: i ↦ i·A mod (2^31 − 1) is a bijection, so every row gets its own time slot. */
const SCATTER_A = 742_938_285;
const SCATTER_P = 2_147_483_647;

/** Same text as src/store/due-query.ts findDuePage (first page), for EXPLAIN. */
const DUE_SQL = `SELECT user_ulid AS "userUlid", next_refresh_at AS "nextRefreshAt", last_used_at AS "lastUsedAt"
    FROM cal_token
    WHERE status = 'ACTIVE'::"CalTokenStatus"
      AND (next_refresh_at, user_ulid) > ($1::timestamptz, $2::char(26))
      AND next_refresh_at <= $3::timestamptz
    ORDER BY next_refresh_at, user_ulid
    LIMIT $4::int`;

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Shared Hit Blocks"?: number;
  "Shared Read Blocks"?: number;
  "Actual Rows"?: number;
  Plans?: PlanNode[];
}

function planChain(node: PlanNode): string {
  const parts: string[] = [];
  for (let n: PlanNode | undefined = node; n; n = n.Plans?.[0]) parts.push(n["Index Name"] ? `${n["Node Type"]} on ${n["Index Name"]}` : n["Node Type"]);
  return parts.join(" → ");
}

function usesIndex(node: PlanNode, name: string): boolean {
  return node["Index Name"] === name || (node.Plans ?? []).some((p) => usesIndex(p, name));
}

async function sweepScaling(ctx: BenchContext): Promise<Row[]> {
  const sql = await sqlClient(ctx);
  await emptyTables(sql);
  // The next sections must not run against a 1M-row table.
  ctx.defer(async () => {
    await sql.query("TRUNCATE cal_token, cal_token_audit, cal_token_event");
  });
  const prefix = sectionPrefix(ctx, "sw");
  const config = loadConfig(ctx.env({ QUEUE_PREFIX: prefix }));
  const prisma = ctx.createPrisma(Math.max(4, config.workerConcurrency + 2));
  const queue = createRefreshQueue({ connection: workerConnection(ctx.redisUrl), prefix });
  queue.on("error", () => undefined);
  ctx.defer(() => queue.close());
  const clock = () => new Date();
  const sweep = createSweep({ prisma, queue, logger: ctx.logger, clock });

  // Envelopes of a real token's size; the sweep never decrypts them.
  const cipher = createTokenCipher(config.encryptionKeys);
  const seed = ctx.fake.createManagedUser();
  const accessEnc = cipher.encrypt(seed.accessToken, "00000000000000000000000000");
  const refreshEnc = cipher.encrypt(seed.refreshToken, "00000000000000000000000000");
  const base = new Date(Date.now() + 60 * 60_000);

  /**
   * Rows from+1..to. next_refresh_at = base + (i·A mod P) ms: a pseudo-random permutation, so the
   * earliest rows (the due ones) are scattered over the whole heap at every size, as in a real table.
   * 1 % RECONNECT_REQUIRED; a quarter never used, the rest used within the last 40 days.
   */
  const fill = async (from: number, to: number) => {
    await sql.query(
      `INSERT INTO cal_token (user_ulid, kind, cal_user_id, access_token_enc, refresh_token_enc, access_token_expires_at,
         refresh_token_expires_at, status, last_refreshed_at, next_refresh_at, last_used_at)
       SELECT lpad(upper(to_hex(i)), 26, '0'), 'managed', i, $3, $4,
              $5::timestamptz + ((i::bigint * ${SCATTER_A}) % ${SCATTER_P}) * interval '1 millisecond' + interval '10 minutes',
              $5::timestamptz + interval '365 days',
              (CASE WHEN i % 100 = 42 THEN 'RECONNECT_REQUIRED' ELSE 'ACTIVE' END)::"CalTokenStatus",
              $5::timestamptz - interval '50 minutes',
              $5::timestamptz + ((i::bigint * ${SCATTER_A}) % ${SCATTER_P}) * interval '1 millisecond',
              CASE WHEN i % 4 = 0 THEN NULL ELSE $5::timestamptz - ((i::bigint * 7919) % 3456000000) * interval '1 millisecond' END
       FROM generate_series($1::int, $2::int) AS i`,
      [from + 1, to, accessEnc, refreshEnc, base.toISOString()],
    );
    await sql.query("VACUUM ANALYZE cal_token");
  };

  type Arm = "full" | "dry" | "enqueue";
  const results = new Map<number, Record<Arm, number[]>>();
  const plans = new Map<number, { reads: number; custom: string; generic: string; buffers: number; execMs: number; indexOk: boolean }>();
  const fillSeconds = new Map<number, number>();
  const tableMb = new Map<number, number>();
  let filled = 0;
  for (const size of SW.sizes) {
    ctx.progress(`growing cal_token to ${size.toLocaleString("en")} rows`);
    const f0 = performance.now();
    await fill(filled, size);
    fillSeconds.set(size, (performance.now() - f0) / 1000);
    filled = size;
    const mb = await sql.query<{ mb: string }>("SELECT pg_total_relation_size('cal_token') / 1048576.0 AS mb");
    tableMb.set(size, Number(mb.rows[0]?.mb ?? Number.NaN));

    // The horizon that makes exactly SW.due ACTIVE rows due at this size.
    const nth = await sql.query<{ at: Date }>(
      `SELECT next_refresh_at AS at FROM cal_token WHERE status = 'ACTIVE' ORDER BY next_refresh_at, user_ulid OFFSET ${SW.due - 1} LIMIT 1`,
    );
    const dueUntil = nth.rows[0]?.at;
    if (!dueUntil) throw new Error("no due rows");
    const horizonMs = () => dueUntil.getTime() - Date.now();

    // ---- plan ----
    const params = [new Date(0).toISOString(), "", dueUntil.toISOString(), SW.pageSize];
    const custom = await sql.query<{ "QUERY PLAN": [{ Plan: PlanNode; "Execution Time": number }] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${DUE_SQL}`,
      params,
    );
    const cPlan = custom.rows[0]?.["QUERY PLAN"][0];
    if (!cPlan) throw new Error("no plan");
    const blocks = (n: PlanNode): number =>
      (n["Shared Hit Blocks"] ?? 0) + (n["Shared Read Blocks"] ?? 0);
    await sql.query("SET plan_cache_mode = force_generic_plan");
    await sql.query(`PREPARE bench_due(timestamptz, char(26), timestamptz, int) AS ${DUE_SQL}`);
    const literals = params.map((p) => (typeof p === "number" ? String(p) : sql.escapeLiteral(p))).join(", ");
    const generic = await sql.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) EXECUTE bench_due(${literals})`);
    await sql.query("DEALLOCATE bench_due");
    await sql.query("RESET plan_cache_mode");
    const gPlan = generic.rows[0]?.["QUERY PLAN"][0];
    plans.set(size, {
      reads: cPlan.Plan["Shared Read Blocks"] ?? 0,
      custom: planChain(cPlan.Plan),
      generic: gPlan ? planChain(gPlan.Plan) : "?",
      buffers: blocks(cPlan.Plan),
      execMs: cPlan["Execution Time"],
      indexOk: usesIndex(cPlan.Plan, "cal_token_due_idx") && (gPlan ? usesIndex(gPlan.Plan, "cal_token_due_idx") : false),
    });

    // ---- the due rows, for the enqueue-only arm (same adds as the sweep, no database) ----
    const dueRows = await prisma.$queryRawUnsafe<{ userUlid: string; nextRefreshAt: Date; lastUsedAt: Date | null }[]>(
      DUE_SQL,
      new Date(0),
      "",
      dueUntil,
      SW.due + 1,
    );
    if (dueRows.length !== SW.due) throw new Error(`expected ${SW.due} due rows, found ${dueRows.length}`);

    const arms: Record<Arm, () => Promise<number>> = {
      full: async () => {
        await queue.obliterate({ force: true });
        const t0 = performance.now();
        const r = await sweep({ horizonMs: horizonMs(), pageSize: SW.pageSize, budgetMs: 60_000 }, false);
        const ms = performance.now() - t0;
        if (r.visited !== SW.due || !r.complete) throw new Error(`sweep visited ${r.visited} (complete ${r.complete})`);
        return ms;
      },
      dry: async () => {
        const t0 = performance.now();
        const r = await sweep({ horizonMs: horizonMs(), pageSize: SW.pageSize, budgetMs: 60_000 }, true);
        const ms = performance.now() - t0;
        if (r.visited !== SW.due) throw new Error(`dry sweep visited ${r.visited}`);
        return ms;
      },
      enqueue: async () => {
        await queue.obliterate({ force: true });
        const t0 = performance.now();
        for (let i = 0; i < dueRows.length; i += SW.pageSize) {
          await Promise.allSettled(dueRows.slice(i, i + SW.pageSize).map((r) => scheduleRefresh(queue, r.userUlid, r.nextRefreshAt, r.lastUsedAt, clock)));
        }
        return performance.now() - t0;
      },
    };
    const order: Arm[] = ["full", "dry", "enqueue"];
    const rec: Record<Arm, number[]> = { full: [], dry: [], enqueue: [] };
    for (const a of order) await arms[a](); // warm-up, not recorded
    for (let r = 0; r < SW.runs; r++) {
      const k = r % order.length;
      const rotated = [...order.slice(k), ...order.slice(0, k)];
      for (const a of r % 2 === 1 ? rotated.reverse() : rotated) rec[a].push(await arms[a]());
    }
    const delayed = await queue.getJobCountByTypes("delayed");
    if (delayed !== SW.due) throw new Error(`expected ${SW.due} delayed jobs after a sweep, found ${delayed}`);
    results.set(size, rec);
  }
  await queue.obliterate({ force: true });

  const med = (size: number, arm: Arm) => median(results.get(size)?.[arm] ?? []);
  const [s0, s1, s2] = SW.sizes as [number, number, number];
  const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
  const rows: Row[] = [];
  for (const size of SW.sizes) {
    const p = plans.get(size);
    rows.push({
      metric: `sweep, ${label(size)} rows: median`,
      value: med(size, "full"),
      unit: "ms",
      detail: `${SW.runs} runs (${(results.get(size)?.full ?? []).map((x) => x.toFixed(0)).join(", ")} ms); dry run ${fmtMs(med(size, "dry"))}, enqueue only ${fmtMs(med(size, "enqueue"))}; first page (EXPLAIN ANALYZE right after VACUUM) ${p?.buffers ?? "?"} buffers (${p?.reads ?? "?"} read), ${fmtMs(p?.execMs ?? Number.NaN)}`,
    });
  }
  const norm = (size: number) => med(size, "full") / med(size, "enqueue");
  rows.push(
    { metric: `sweep ratio ${label(s1)} / ${label(s0)}`, value: med(s1, "full") / med(s0, "full"), unit: "×", detail: `normalised by the interleaved enqueue-only time: ${(norm(s1) / norm(s0)).toFixed(2)}×` },
    {
      metric: `sweep ratio ${label(s2)} / ${label(s0)}`,
      value: med(s2, "full") / med(s0, "full"),
      unit: "×",
      goal: { op: "<=", target: 1.5 },
      detail: `normalised by the interleaved enqueue-only time: ${(norm(s2) / norm(s0)).toFixed(2)}×`,
    },
    { metric: `dry run (database only) ratio ${label(s1)} / ${label(s0)}`, value: med(s1, "dry") / med(s0, "dry"), unit: "×", detail: SW.sizes.map((s) => `${label(s)} ${fmtMs(med(s, "dry"))}`).join(", ") },
    { metric: `dry run (database only) ratio ${label(s2)} / ${label(s0)}`, value: med(s2, "dry") / med(s0, "dry"), unit: "×", detail: "informational" },
    { metric: `database share of a sweep, ${label(s2)}`, value: (100 * med(s2, "dry")) / med(s2, "full"), unit: "%", detail: `dry run / full sweep (${label(s0)}: ${((100 * med(s0, "dry")) / med(s0, "full")).toFixed(1)} %)` },
  );
  const p2 = plans.get(s2);
  ctx.note(
    `One table grown ${SW.sizes.map(label).join(" → ")} with INSERT … SELECT generate_series (dummy envelopes of a real token's length, 26-char hex ids, 1 % RECONNECT_REQUIRED), VACUUM ANALYZE after each step ` +
      `(${SW.sizes.map((s) => `${label(s)}: ${(fillSeconds.get(s) ?? 0).toFixed(1)} s, ${(tableMb.get(s) ?? 0).toFixed(0)} MB with indexes`).join("; ")}). ` +
      `next_refresh_at is a pseudo-random permutation (i·${SCATTER_A} mod 2³¹−1 ms after a base an hour ahead), so the ${SW.due} due rows — the ${SW.due} earliest ACTIVE ones; the horizon is set to the ${SW.due}th — are scattered over the whole heap at every size.`,
  );
  ctx.note(
    `Per size: one warm-up of each arm, then ${SW.runs} rounds of {full sweep (queue obliterated first, so all ${SW.due} adds are real delayed jobs), dry run (database only), enqueue only (the same ${SW.due} scheduleRefresh calls in pages of ${SW.pageSize}, no database)} in rotating order; pageSize ${SW.pageSize}. ` +
      `The sizes cannot be interleaved (the table only grows), so the enqueue-only arm is the drift control: "normalised" divides each size's sweep by its own enqueue-only median.`,
  );
  ctx.note(
    `EXPLAIN of the first page (same SQL as src/store/due-query.ts): ${SW.sizes.map((s) => `${label(s)}: ${plans.get(s)?.custom ?? "?"}`).join("; ")}. ` +
      `Generic plan (plan_cache_mode = force_generic_plan, what a reused prepared statement gets): ${p2?.generic ?? "?"}. ` +
      `cal_token_due_idx used at every size, both plans: ${[...plans.values()].every((p) => p.indexOk) ? "yes" : "NO"}. Buffers per first page: ${SW.sizes.map((s) => `${label(s)} ${plans.get(s)?.buffers ?? "?"}`).join(", ")}.`,
  );
  ctx.note("The table is emptied at the end of the section, so later sections do not run against 1M rows.");
  return rows;
}

// ---------------------------------------------------------------------------------------------
// queued-vs-inline
// ---------------------------------------------------------------------------------------------

const QVI = { iterations: 200, warmup: 20, concurrency: 10 };

async function queuedVsInline(ctx: BenchContext): Promise<Row[]> {
  const sql = await sqlClient(ctx);
  await emptyTables(sql);
  const fake = await ownFake(ctx);
  const prefix = sectionPrefix(ctx, "qvi");
  const config = loadConfig(
    ctx.env({
      CAL_API_URL: fake.url,
      QUEUE_PREFIX: prefix,
      WORKER_CONCURRENCY: String(QVI.concurrency),
      CAL_REFRESH_RATE_PER_MINUTE: "60000",
    }),
  );
  const client = ctx.createClient({ config });
  const total = QVI.iterations + QVI.warmup;
  ctx.progress(`seeding ${2 * total} users`);
  const seeded = await seedUsers(client, fake, new Array<undefined>(2 * total).fill(undefined));
  const queuedUsers = seeded.slice(0, total);
  const inlineUsers = seeded.slice(total);
  const app = await startWorker(ctx, config);
  await firstSweepDone(app);

  // BullMQ's own round trip for reference: add a priority-1 job, a no-op worker, waitUntilFinished.
  const noopName = "bench-noop-rt";
  const noopQueue = new Queue(noopName, { connection: workerConnection(ctx.redisUrl), prefix, defaultJobOptions: REFRESH_JOB_DEFAULTS });
  const noopWorker = new Worker(noopName, async () => ({ result: "noop" }), { connection: workerConnection(ctx.redisUrl), prefix, concurrency: QVI.concurrency });
  const noopEvents = new QueueEvents(noopName, { connection: workerConnection(ctx.redisUrl), prefix });
  noopQueue.on("error", () => undefined);
  noopWorker.on("error", () => undefined);
  noopEvents.on("error", () => undefined);
  ctx.defer(async () => {
    await noopWorker.close();
    await noopEvents.close();
    await noopQueue.close();
  });
  await Promise.all([noopWorker.waitUntilReady(), noopEvents.waitUntilReady(), noopQueue.waitUntilReady()]);

  const queued: number[] = [];
  const inline: number[] = [];
  const roundTrip: number[] = [];
  const bad: string[] = [];
  const iteration = async (i: number, record: boolean) => {
    const tasks: (() => Promise<void>)[] = [
      async () => {
        const t0 = performance.now();
        const r = await client.requestCalTokenRefresh(queuedUsers[i] as string, { wait: true });
        const ms = performance.now() - t0;
        if (!r.success || !r.refreshed) bad.push(`queued: ${r.error?.code ?? "not refreshed"}`);
        if (record) queued.push(ms);
      },
      async () => {
        const t0 = performance.now();
        const r = await client.ensureValidCalToken(inlineUsers[i] as string, true);
        const ms = performance.now() - t0;
        if (!r.success || !r.refreshed) bad.push(`inline: ${r.error?.code ?? "not refreshed"}`);
        if (record) inline.push(ms);
      },
      async () => {
        const t0 = performance.now();
        const job = await noopQueue.add(JOB_NAMES.refresh, { userUlid: queuedUsers[i] as string }, { priority: PRIORITY.onDemand });
        await job.waitUntilFinished(noopEvents, 15_000);
        if (record) roundTrip.push(performance.now() - t0);
      },
    ];
    const k = i % tasks.length;
    const rotated = [...tasks.slice(k), ...tasks.slice(0, k)];
    for (const t of i % 2 === 1 ? rotated.reverse() : rotated) await t();
  };
  ctx.progress(`warm-up: ${QVI.warmup} iterations`);
  for (let i = 0; i < QVI.warmup; i++) await iteration(i, false);
  ctx.progress(`measuring: ${QVI.iterations} iterations (queued, inline, BullMQ no-op round trip), rotating order`);
  for (let i = QVI.warmup; i < total; i++) await iteration(i, true);
  if (bad.length > 0) throw new Error(`unexpected results: ${bad.slice(0, 5).join(", ")} (${bad.length} in all)`);

  const sq = summarize(queued);
  const si = summarize(inline);
  const sr = summarize(roundTrip);
  const paired = pairedDiff(queued, inline);

  // Where the queued time goes: the job's own timestamps (ms resolution) split it into "in the
  // processor" (processedOn → finishedOn: refresh + reschedule) and the rest (client reads, promotion,
  // pick-up, completion event).
  const measured = new Map(queuedUsers.slice(QVI.warmup).map((u, i) => [u, queued[i] as number]));
  const done = await app.refreshQueue.getJobs(["completed"], 0, 5_000);
  const inProcessor: number[] = [];
  const outside: number[] = [];
  for (const job of done) {
    const e2e = measured.get(job.data.userUlid);
    if (e2e === undefined || job.priority !== PRIORITY.onDemand || !job.processedOn || !job.finishedOn) continue;
    inProcessor.push(job.finishedOn - job.processedOn);
    outside.push(e2e - (job.finishedOn - job.processedOn));
  }
  ctx.note(
    `Each iteration runs, in rotating order: requestCalTokenRefresh(u, { wait: true }) for one user (the in-process worker at concurrency ${QVI.concurrency} force-refreshes it), ` +
      `ensureValidCalToken(v, true) for another (inline forced refresh, same client), and a BullMQ no-op round trip (add a priority-1 job to a queue served by a no-op Worker, waitUntilFinished). ` +
      `Every user is refreshed once, and each queued user already had its delayed job from the save, so the queued path promotes it (changePriority + promote) instead of adding one.`,
  );
  ctx.note(
    `The queued path adds, on top of the refresh: getMeta, the job lookup and promotion, the wait through QueueEvents (a Redis stream), the processor's getMeta and its reschedule (getMeta, dedup-key removal, delayed add), then store.get for the result. ` +
      `The BullMQ no-op round trip (p50 ${fmtMs(sr.p50)}) is the part of the overhead that is BullMQ itself; the rest is ${fmtMs(sq.p50 - si.p50 - sr.p50)} at p50.`,
  );
  return [
    { metric: "inline forced refresh p50 (baseline)", value: si.p50, unit: "ms", detail: `ensureValidCalToken(u, true); ${QVI.iterations} calls` },
    { metric: "inline forced refresh p99", value: si.p99, unit: "ms", detail: "" },
    { metric: "queued refresh (wait) p50", value: sq.p50, unit: "ms", detail: `requestCalTokenRefresh(u, { wait: true }); ${QVI.iterations} calls, interleaved` },
    { metric: "queued refresh (wait) p99", value: sq.p99, unit: "ms", detail: "" },
    { metric: "overhead p50 (difference of p50s)", value: sq.p50 - si.p50, unit: "ms", goal: { op: "<=", target: 10 }, detail: "queued p50 − inline p50" },
    { metric: "overhead p50 (paired)", value: median(paired), unit: "ms", detail: "p50 of (queued − inline of the same iteration); cross-check" },
    { metric: "overhead p99 (difference of p99s)", value: sq.p99 - si.p99, unit: "ms", detail: "informational" },
    { metric: "ratio of medians (queued / inline)", value: sq.p50 / si.p50, unit: "×", detail: "informational" },
    { metric: "BullMQ no-op round trip p50 (reference)", value: sr.p50, unit: "ms", detail: `add + no-op worker + waitUntilFinished; p99 ${fmtMs(sr.p99)}` },
    {
      metric: "queued: time in the processor p50",
      value: median(inProcessor),
      unit: "ms",
      detail: `job processedOn → finishedOn (ms resolution), ${inProcessor.length} jobs: getMeta, refresh, reschedule; compare the inline p50`,
    },
    { metric: "queued: time outside the processor p50", value: median(outside), unit: "ms", detail: "end-to-end − processor time, per job: client reads, promotion, pick-up, completion event" },
  ];
}

// ---------------------------------------------------------------------------------------------
// redis-memory
// ---------------------------------------------------------------------------------------------

const MEM = { users: 10_000, infoSamples: 5 };

async function usedMemory(redis: Redis): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < MEM.infoSamples; i++) {
    const info = await redis.info("memory");
    const m = /used_memory:(\d+)/.exec(info);
    xs.push(Number(m?.[1] ?? Number.NaN));
    await sleep(100);
  }
  return median(xs);
}

async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

async function memoryUsage(redis: Redis, keys: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < keys.length; i += 1000) {
    const p = redis.pipeline();
    const chunk = keys.slice(i, i + 1000);
    for (const k of chunk) p.call("MEMORY", "USAGE", k, "SAMPLES", "0");
    const res = (await p.exec()) ?? [];
    chunk.forEach((k, j) => out.set(k, Number(res[j]?.[1] ?? 0)));
  }
  return out;
}

async function redisMemory(ctx: BenchContext): Promise<Row[]> {
  const prefix = sectionPrefix(ctx, "mem");
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
  ctx.defer(() => redis.disconnect());
  const queue = createRefreshQueue({ connection: workerConnection(ctx.redisUrl), prefix });
  queue.on("error", () => undefined);
  ctx.defer(() => queue.close());
  await queue.waitUntilReady();

  const rand = prng(42);
  const now = Date.now();
  const users = Array.from({ length: MEM.users }, () => ulid());
  // A realistic mix: next refresh 10–60 min ahead, a third active today, a third this month, a third idle.
  const plan = users.map((u, i) => ({
    u,
    at: new Date(now + 10 * 60_000 + Math.round(rand() * 50 * 60_000)),
    lastUsed: i % 3 === 0 ? new Date(now - 3_600_000) : i % 3 === 1 ? new Date(now - 7 * 86_400_000) : null,
  }));

  const before = await usedMemory(redis);
  const clock = () => new Date();
  const t0 = performance.now();
  for (let i = 0; i < plan.length; i += 500) {
    await Promise.all(plan.slice(i, i + 500).map((p) => scheduleRefresh(queue, p.u, p.at, p.lastUsed, clock)));
  }
  const addMs = performance.now() - t0;
  const after = await usedMemory(redis);

  const keys = await scanKeys(redis, `${prefix}:`);
  const usage = await memoryUsage(redis, keys);
  const base = `${prefix}:${QUEUES.refresh}:`;
  let jobBytes = 0;
  let jobCount = 0;
  let dedupBytes = 0;
  let dedupCount = 0;
  const structures: { name: string; bytes: number }[] = [];
  for (const [k, b] of usage) {
    const rest = k.startsWith(base) ? k.slice(base.length) : k;
    if (/^\d+$/.test(rest)) {
      jobBytes += b;
      jobCount++;
    } else if (rest.startsWith("de:")) {
      dedupBytes += b;
      dedupCount++;
    } else structures.push({ name: rest, bytes: b });
  }
  structures.sort((a, b) => b.bytes - a.bytes);
  const delayed = structures.find((s) => s.name === "delayed")?.bytes ?? 0;
  const events = structures.find((s) => s.name === "events")?.bytes ?? 0;
  const perUserKeys = (jobBytes + dedupBytes + delayed) / MEM.users;
  const totalBytes = [...usage.values()].reduce((a, b) => a + b, 0);
  const sample = `${base}${Math.ceil(MEM.users / 2)}`;
  const oneJob = usage.get(sample) ?? Number.NaN;
  const delayedCount = await queue.getJobCountByTypes("delayed");

  // A finished job, as removeOnComplete keeps up to 5,000 of them: one no-op job on a side queue.
  const doneName = "bench-mem-done";
  const doneQueue = new Queue(doneName, { connection: workerConnection(ctx.redisUrl), prefix, defaultJobOptions: REFRESH_JOB_DEFAULTS });
  const doneWorker = new Worker(doneName, async () => ({ result: "refreshed", version: 2 }), { connection: workerConnection(ctx.redisUrl), prefix });
  doneQueue.on("error", () => undefined);
  doneWorker.on("error", () => undefined);
  let completedBytes = Number.NaN;
  try {
    const finished = new Promise<void>((resolve) => doneWorker.once("completed", () => resolve()));
    const job = await scheduleRefresh(doneQueue as Queue<RefreshJobData>, users[0] as string, new Date(), null, clock);
    await Promise.race([finished, sleep(10_000)]);
    completedBytes = Number((await redis.call("MEMORY", "USAGE", `${prefix}:${doneName}:${job.jobId ?? ""}`, "SAMPLES", "0")) ?? Number.NaN);
  } finally {
    await doneWorker.close();
    await doneQueue.close();
  }
  const policy = ((await redis.call("CONFIG", "GET", "maxmemory-policy")) as string[] | null)?.[1] ?? "?";
  const infoDelta = (after - before) / MEM.users;

  ctx.note(
    `${MEM.users.toLocaleString("en")} users scheduled with scheduleRefresh (src/queue/refresh-queue.ts) on a fresh prefix (${(addMs / 1000).toFixed(1)} s, in batches of 500): ` +
      `${delayedCount} delayed jobs, each a job hash + a deduplication key + a member of the delayed sorted set. ` +
      `used_memory is the median of ${MEM.infoSamples} INFO reads before and after; this Redis is shared with other test runs, so that delta is noisy, while MEMORY USAGE (SAMPLES 0) summed over the prefix's keys counts only ours.`,
  );
  ctx.note(
    `Per scheduled user (MEMORY USAGE): job hash ${(jobBytes / Math.max(1, jobCount)).toFixed(0)} B, dedup key ${(dedupBytes / Math.max(1, dedupCount)).toFixed(0)} B, delayed-set entry ${(delayed / MEM.users).toFixed(0)} B. ` +
      `Constant per queue: the events stream ${fmtBytes(events)} (BullMQ trims it to ~10,000 events), other structures ${structures
        .filter((s) => s.name !== "delayed" && s.name !== "events")
        .map((s) => `${s.name} ${fmtBytes(s.bytes)}`)
        .join(", ")}. ` +
      `A completed job hash (kept up to removeOnComplete's 5,000 per queue, for an hour) is ${Number.isFinite(completedBytes) ? `${completedBytes.toFixed(0)} B, i.e. ≤ ${fmtBytes(5_000 * completedBytes)}` : "n/a"} on top.`,
  );
  ctx.note(
    `Capacity at ${perUserKeys.toFixed(0)} B per user: 100k users ≈ ${fmtBytes(100_000 * perUserKeys)}, 1M users ≈ ${fmtBytes(1_000_000 * perUserKeys)}, plus the constant parts above. ` +
      `maxmemory-policy here is ${policy} (BullMQ needs noeviction).`,
  );
  return [
    { metric: "used_memory delta per scheduled user", value: Math.round(infoDelta), unit: "B", detail: `INFO memory: ${fmtBytes(before)} → ${fmtBytes(after)} for ${MEM.users.toLocaleString("en")} users (noisy: shared Redis)` },
    { metric: "MEMORY USAGE per scheduled user", value: Math.round(perUserKeys), unit: "B", detail: "(job hashes + dedup keys + delayed set) / users" },
    {
      metric: "ratio INFO delta / MEMORY USAGE of every key",
      value: (after - before) / totalBytes,
      unit: "×",
      detail: `all ${keys.length.toLocaleString("en")} keys of the prefix incl. the events stream (${fmtBytes(totalBytes)}); allocator overhead and other clients' activity make it ≠ 1`,
    },
    { metric: "MEMORY USAGE of one job hash", value: oneJob, unit: "B", detail: `${sample.slice(prefix.length + 1)}: name, data {userUlid}, opts (priority, dedup, retries, removeOn*), delay, timestamp, priority, deid` },
    { metric: "MEMORY USAGE of one completed job hash", value: completedBytes, unit: "B", detail: "with returnvalue, processedOn, finishedOn, attemptsMade" },
  ];
}

// ---------------------------------------------------------------------------------------------

export const workerSections: Section[] = [
  {
    name: "proactive-vs-reactive",
    title: "share of request-path calls that wait on a refresh, worker off vs on",
    goal: "with the worker on, after warm-up, the share of calls that waited on a refresh = 0",
    run: proactiveVsReactive,
  },
  {
    name: "worker-throughput",
    title: "refreshes per second per worker process vs BullMQ's own no-op job rate",
    goal: "refresh rate / no-op job rate ≥ 0.25 at the same concurrency (C = 10)",
    run: workerThroughput,
  },
  {
    name: "sweep-scaling",
    title: "one sweep with 1,000 due rows in tables of 10k, 100k and 1M rows",
    goal: "sweep time at 1M rows ≤ 1.5 × sweep time at 10k rows",
    run: sweepScaling,
  },
  {
    name: "queued-vs-inline",
    title: "requestCalTokenRefresh(u, { wait: true }) through the worker vs an inline refresh",
    goal: "p50 overhead (queued − inline) ≤ 10 ms",
    run: queuedVsInline,
  },
  {
    name: "redis-memory",
    title: "Redis memory per scheduled user",
    goal: "none (input for the capacity table)",
    run: redisMemory,
  },
];
