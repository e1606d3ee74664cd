/**
 * queued-vs-inline: requestCalTokenRefresh(u, { wait: true }) through the in-process worker vs an
 * inline forced refresh, interleaved, with a BullMQ no-op round trip for reference.
 */
import { performance } from "node:perf_hooks";
import { Queue, QueueEvents, Worker } from "bullmq";
import { loadConfig } from "../../src/config/config.js";
import type { WorkerApp } from "../../src/wiring/worker-app.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import { workerConnection } from "../../src/queue/connection.js";
import { JOB_NAMES, PRIORITY } from "../../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS } from "../../src/queue/refresh-queue.js";
import { fmtMs } from "../lib/format.js";
import { median, pairedDiff, summarize } from "../lib/stats.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import { emptyTables, firstSweepDone, ownFake, sectionPrefix, seedUsers, sqlClient, startWorker } from "./shared.js";

const QVI = { iterations: 200, warmup: 20, concurrency: 10 };

/** Latencies (ms) of the measured iterations. */
interface Measured {
  queued: number[];
  inline: number[];
  roundTrip: number[];
}

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
  const noop = await startRoundTrip(ctx, prefix);
  const m = await measure(ctx, client, noop, queuedUsers, inlineUsers);
  const split = await processorSplit(app, queuedUsers, m.queued);
  qviNotes(ctx, m);
  return qviRows(m, split);
}

/** A no-op Worker on its own queue, and the QueueEvents a job's waitUntilFinished listens on. */
async function startRoundTrip(ctx: BenchContext, prefix: string): Promise<{ noopQueue: Queue; noopEvents: QueueEvents }> {
  const noopName = "bench-noop-rt";
  const noopQueue = new Queue(noopName, { connection: workerConnection(ctx.redisUrl), prefix, defaultJobOptions: REFRESH_JOB_DEFAULTS });
  const noopWorker = new Worker(noopName, async () => ({ result: "noop" }), {
    connection: workerConnection(ctx.redisUrl),
    prefix,
    concurrency: QVI.concurrency,
  });
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
  return { noopQueue, noopEvents };
}

/** Warm-up, then QVI.iterations iterations of {queued, inline, no-op round trip} in rotating order. */
async function measure(
  ctx: BenchContext,
  client: CalTokenClient,
  { noopQueue, noopEvents }: { noopQueue: Queue; noopEvents: QueueEvents },
  queuedUsers: string[],
  inlineUsers: string[],
): Promise<Measured> {
  const total = QVI.iterations + QVI.warmup;
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
  return { queued, inline, roundTrip };
}

/**
 * Where the queued time goes: the job's own timestamps (ms resolution) split it into "in the
 * processor" (processedOn → finishedOn: refresh + reschedule) and the rest (client reads, promotion,
 * pick-up, completion event).
 */
async function processorSplit(
  app: WorkerApp,
  queuedUsers: string[],
  queued: number[],
): Promise<{ inProcessor: number[]; outside: number[] }> {
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
  return { inProcessor, outside };
}

function qviNotes(ctx: BenchContext, { queued, inline, roundTrip }: Measured): void {
  const sq = summarize(queued);
  const si = summarize(inline);
  const sr = summarize(roundTrip);
  ctx.note(
    `Each iteration runs, in rotating order: requestCalTokenRefresh(u, { wait: true }) for one user (the in-process worker at concurrency ${QVI.concurrency} force-refreshes it), ` +
      `ensureValidCalToken(v, true) for another (inline forced refresh, same client), and a BullMQ no-op round trip (add a priority-1 job to a queue served by a no-op Worker, waitUntilFinished). ` +
      `Every user is refreshed once, and each queued user already had its delayed job from the save, so the queued path promotes it (changePriority + promote) instead of adding one.`,
  );
  ctx.note(
    `The queued path adds, on top of the refresh: getMeta, the job lookup and promotion, the wait through QueueEvents (a Redis stream), the processor's getMeta and its reschedule (getMeta, dedup-key removal, delayed add), then store.get for the result. ` +
      `The BullMQ no-op round trip (p50 ${fmtMs(sr.p50)}) is the part of the overhead that is BullMQ itself; the rest is ${fmtMs(sq.p50 - si.p50 - sr.p50)} at p50.`,
  );
}

function qviRows({ queued, inline, roundTrip }: Measured, { inProcessor, outside }: { inProcessor: number[]; outside: number[] }): Row[] {
  const sq = summarize(queued);
  const si = summarize(inline);
  const sr = summarize(roundTrip);
  const paired = pairedDiff(queued, inline);
  return [
    {
      metric: "inline forced refresh p50 (baseline)",
      value: si.p50,
      unit: "ms",
      detail: `ensureValidCalToken(u, true); ${QVI.iterations} calls`,
    },
    { metric: "inline forced refresh p99", value: si.p99, unit: "ms", detail: "" },
    {
      metric: "queued refresh (wait) p50",
      value: sq.p50,
      unit: "ms",
      detail: `requestCalTokenRefresh(u, { wait: true }); ${QVI.iterations} calls, interleaved`,
    },
    { metric: "queued refresh (wait) p99", value: sq.p99, unit: "ms", detail: "" },
    {
      metric: "overhead p50 (difference of p50s)",
      value: sq.p50 - si.p50,
      unit: "ms",
      goal: { op: "<=", target: 10 },
      detail: "queued p50 − inline p50",
    },
    {
      metric: "overhead p50 (paired)",
      value: median(paired),
      unit: "ms",
      detail: "p50 of (queued − inline of the same iteration); cross-check",
    },
    { metric: "overhead p99 (difference of p99s)", value: sq.p99 - si.p99, unit: "ms", detail: "informational" },
    { metric: "ratio of medians (queued / inline)", value: sq.p50 / si.p50, unit: "×", detail: "informational" },
    {
      metric: "BullMQ no-op round trip p50 (reference)",
      value: sr.p50,
      unit: "ms",
      detail: `add + no-op worker + waitUntilFinished; p99 ${fmtMs(sr.p99)}`,
    },
    {
      metric: "queued: time in the processor p50",
      value: median(inProcessor),
      unit: "ms",
      detail: `job processedOn → finishedOn (ms resolution), ${inProcessor.length} jobs: getMeta, refresh, reschedule; compare the inline p50`,
    },
    {
      metric: "queued: time outside the processor p50",
      value: median(outside),
      unit: "ms",
      detail: "end-to-end − processor time, per job: client reads, promotion, pick-up, completion event",
    },
  ];
}

export const queuedVsInlineSection: Section = {
  name: "queued-vs-inline",
  title: "requestCalTokenRefresh(u, { wait: true }) through the worker vs an inline refresh",
  goal: "p50 overhead (queued − inline) ≤ 10 ms",
  run: queuedVsInline,
};
