/**
 * worker-throughput: refreshes per second of one in-process worker against a BullMQ Worker with a
 * no-op processor (same concurrency, options and job shape), plus the HTTP refresh alone; rounds in
 * throughput-drain.ts.
 */
import { Queue, Worker } from "bullmq";
import type pg from "pg";
import { calcomTokenApiFromConfig } from "../../src/wiring/calcom-from-config.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { workerConnection } from "../../src/queue/connection.js";
import type { RefreshJobData } from "../../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS } from "../../src/queue/refresh-queue.js";
import type { FakeCalcom } from "../../test/fakes/calcom/index.js";
import { median } from "../lib/stats.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import { emptyTables, firstSweepDone, ownFake, sectionPrefix, seedUsers, sqlClient, startWorker } from "./shared.js";
import { TP, drainRound, httpRound, type Drain } from "./throughput-drain.js";

type ArmName = "real" | "noop" | "http";
type Arms = Record<ArmName, (us: string[]) => Promise<Drain>>;

/** One concurrency's pass: what it runs against, and the counters across passes. */
interface Pass {
  sql: pg.Client;
  fake: FakeCalcom;
  prefix: string;
  config: Config;
  users: string[];
  concurrency: number;
  rounds: number;
  notes: string[];
  counts: { realRounds: number; httpRefreshes: number };
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
  const counts = { realRounds: 0, httpRefreshes: 0 };
  for (const { concurrency, rounds } of TP.plan) {
    if (!(await enoughConnections(sql, concurrency, notes))) continue;
    const config = loadConfig(envFor(concurrency));
    const measured = await measurePass(ctx, { sql, fake, prefix, config, users, concurrency, rounds, notes, counts });
    rows.push(...passRows(concurrency, rounds, measured, notes));
  }
  const { realRounds } = counts;
  const refreshed = fake.stats().refreshes - refreshesBefore - counts.httpRefreshes;
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

/** False (and a note) when Postgres has too few free connections for this concurrency's worker pool. */
async function enoughConnections(sql: pg.Client, concurrency: number, notes: string[]): Promise<boolean> {
  const free = await sql.query<{ free: number }>(
    "SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)::int AS free",
  );
  const freeConns = free.rows[0]?.free ?? 0;
  if (concurrency > 10 && freeConns < concurrency + 2 + TP.connectionHeadroom) {
    notes.push(`C=${concurrency} skipped: only ${freeConns} free Postgres connections (the worker's pool would be ${concurrency + 2}).`);
    return false;
  }
  return true;
}

/** The baseline: a no-op Worker with the refresh worker's options, on its own queue under the prefix. */
async function startNoopWorker(ctx: BenchContext, prefix: string, concurrency: number, config: Config) {
  const noopName = "bench-noop";
  const noopQueue = new Queue<RefreshJobData>(noopName, {
    connection: workerConnection(ctx.redisUrl),
    prefix,
    defaultJobOptions: REFRESH_JOB_DEFAULTS,
  });
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
  return { noopQueue, noopWorker };
}

/** Starts the worker and the no-op baseline at this concurrency, runs the rounds, closes both. */
async function measurePass(ctx: BenchContext, pass: Pass): Promise<Record<ArmName, Drain[]>> {
  const { sql, fake, prefix, config, concurrency, notes, counts } = pass;
  const app = await startWorker(ctx, config);
  if (!(await firstSweepDone(app))) notes.push(`C=${concurrency}: the worker's first sweep had not finished after 15 s.`);
  const { noopQueue, noopWorker } = await startNoopWorker(ctx, prefix, concurrency, config);
  const calcom = calcomTokenApiFromConfig(config, ctx.logger);
  const resetRows = async () => {
    // Every row due now, so the processor refreshes instead of rescheduling.
    await sql.query("UPDATE cal_token SET next_refresh_at = $1", [new Date().toISOString()]);
  };
  const arms: Arms = {
    real: (us: string[]) => drainRound(app.refreshQueue, app.refreshWorker as unknown as Worker, us, resetRows),
    noop: (us: string[]) => drainRound(noopQueue, noopWorker as unknown as Worker, us),
    http: async (us: string[]) => {
      const n = Math.min(us.length, TP.httpCalls);
      counts.httpRefreshes += n;
      return httpRound(calcom, fake, n, concurrency);
    },
  };
  try {
    return await runRounds(ctx, arms, pass);
  } finally {
    calcom.close();
    await noopWorker.close();
    await noopQueue.obliterate({ force: true }).catch(() => undefined);
    await noopQueue.close();
    await app.close();
  }
}

/** One unrecorded warm-up round of each arm, then `rounds` recorded rounds in rotating order. */
async function runRounds(ctx: BenchContext, arms: Arms, { users, concurrency, rounds, counts }: Pass): Promise<Record<ArmName, Drain[]>> {
  const real: Drain[] = [];
  const noop: Drain[] = [];
  const http: Drain[] = [];
  const order: ArmName[] = ["real", "noop", "http"];
  ctx.progress(`C=${concurrency} warm-up: ${TP.warmupJobs} jobs per arm`);
  for (const a of order) {
    await arms[a](users.slice(0, TP.warmupJobs));
    if (a === "real") counts.realRounds += TP.warmupJobs / TP.users;
  }
  for (let r = 0; r < rounds; r++) {
    const k = r % order.length;
    const rotated = [...order.slice(k), ...order.slice(0, k)];
    for (const which of r % 2 === 1 ? rotated.reverse() : rotated) {
      ctx.progress(`C=${concurrency} round ${r + 1}/${rounds}: ${which}`);
      const d = await arms[which](users);
      if (which === "real") counts.realRounds++;
      (which === "real" ? real : which === "noop" ? noop : http).push(d);
    }
  }
  return { real, noop, http };
}

const rate = (d: Drain) => (TP.users * 1000) / d.ms;
const cpuPerJob = (ds: Drain[]) => median(ds.map((d) => d.cpuUs / TP.users));

/** The pass's rows; its notes (unexpected results, the C=10 goal check) go to `notes`. */
function passRows(concurrency: number, rounds: number, { real, noop, http }: Record<ArmName, Drain[]>, notes: string[]): Row[] {
  const realRates = real.map(rate);
  const noopRates = noop.map(rate);
  const httpRates = http.map((d) => (TP.httpCalls * 1000) / d.ms);
  const httpCpu = median(http.map((d) => d.cpuUs / TP.httpCalls));
  const ratio = median(realRates) / median(noopRates);
  const perRound = median(realRates.map((x, i) => x / (noopRates[i] as number)));
  const bad = [...real, ...http].flatMap((d) => [...d.results.entries()].filter(([k]) => k !== "refreshed").map(([k, n]) => `${k}: ${n}`));
  const failedJobs = [...real, ...noop, ...http].reduce((acc, d) => acc + d.failed, 0);
  if (bad.length > 0 || failedJobs > 0)
    notes.push(`C=${concurrency}: unexpected job results ${bad.join(", ") || "none"}; failed jobs ${failedJobs}.`);
  const how = `median of ${rounds} rounds of ${TP.users} jobs (${realRates.map((x) => x.toFixed(0)).join(", ")}/s)`;
  if (concurrency === 10) {
    notes.push(
      `Goal check (C=10): 0.25 × the no-op rate is ${Math.round(0.25 * median(noopRates))} refreshes/s, i.e. at most ${((4 * cpuPerJob(noop)) / 1000).toFixed(2)} ms of node CPU per refresh on this CPU-bound box; ` +
        `a refresh job took ${(cpuPerJob(real) / 1000).toFixed(2)} ms, of which the HTTP exchange with the in-process fake alone (got + the fake's server) ${(httpCpu / 1000).toFixed(2)} ms. ` +
        `A refresh job is 3 reads (getMeta, get, getMeta), 2 commits (lease; CAS + audit), an HTTP round trip and 2 Redis calls (dedup-key removal, delayed add) on top of BullMQ's own work, so a no-op job is not a reachable bar at 0.25.`,
    );
  }
  return [
    { metric: `C=${concurrency}: refreshes/s, one worker process`, value: Math.round(median(realRates)), unit: "/s", detail: how },
    {
      metric: `C=${concurrency}: BullMQ no-op jobs/s (baseline)`,
      value: Math.round(median(noopRates)),
      unit: "/s",
      detail: `median of ${rounds} rounds (${noopRates.map((x) => x.toFixed(0)).join(", ")}/s), interleaved`,
    },
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
  ];
}

export const workerThroughputSection: Section = {
  name: "worker-throughput",
  title: "refreshes per second per worker process vs BullMQ's own no-op job rate",
  goal: "refresh rate / no-op job rate ≥ 0.25 at the same concurrency (C = 10)",
  run: workerThroughput,
};
