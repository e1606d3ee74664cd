/**
 * redis-memory: Redis memory per user after scheduling 10,000 users' delayed refresh jobs, from INFO
 * before/after and from MEMORY USAGE of the prefix's keys.
 */
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { ulid } from "ulid";
import { workerConnection } from "../../src/queue/connection.js";
import { PRIORITY, QUEUES, type RefreshJobData } from "../../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS, createRefreshQueue, priorityFor, scheduleRefresh } from "../../src/queue/refresh-queue.js";
import { fmtBytes } from "../lib/format.js";
import { median } from "../lib/stats.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import { prng, sectionPrefix, sleep } from "./shared.js";

const MEM = { users: 10_000, infoSamples: 5 };

/** MEMORY USAGE summed by kind of key. */
interface Usage {
  jobBytes: number;
  jobCount: number;
  dedupBytes: number;
  dedupCount: number;
  structures: { name: string; bytes: number }[];
}

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
    for (const [j, k] of chunk.entries()) out.set(k, Number(res[j]?.[1] ?? 0));
  }
  return out;
}

/** Job hashes (numeric ids), dedup keys (`de:`) and the rest of the queue's structures, largest first. */
function classify(usage: Map<string, number>, base: string): Usage {
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
  return { jobBytes, jobCount, dedupBytes, dedupCount, structures };
}

/** A finished job, as removeOnComplete keeps up to 5,000 of them: one no-op job on a side queue. */
async function completedJobBytes(ctx: BenchContext, redis: Redis, prefix: string, user: string, clock: () => Date): Promise<number> {
  const doneName = "bench-mem-done";
  const doneQueue = new Queue(doneName, { connection: workerConnection(ctx.redisUrl), prefix, defaultJobOptions: REFRESH_JOB_DEFAULTS });
  const doneWorker = new Worker(doneName, async () => ({ result: "refreshed", version: 2 }), {
    connection: workerConnection(ctx.redisUrl),
    prefix,
  });
  doneQueue.on("error", () => undefined);
  doneWorker.on("error", () => undefined);
  let completedBytes = Number.NaN;
  try {
    const finished = new Promise<void>((resolve) => doneWorker.once("completed", () => resolve()));
    const job = await scheduleRefresh(doneQueue as Queue<RefreshJobData>, user, new Date(), PRIORITY.idle, clock);
    await Promise.race([finished, sleep(10_000)]);
    completedBytes = Number(
      (await redis.call("MEMORY", "USAGE", `${prefix}:${doneName}:${job.jobId ?? ""}`, "SAMPLES", "0")) ?? Number.NaN,
    );
  } finally {
    await doneWorker.close();
    await doneQueue.close();
  }
  return completedBytes;
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
    await Promise.all(plan.slice(i, i + 500).map((p) => scheduleRefresh(queue, p.u, p.at, priorityFor(p.lastUsed, clock()), clock)));
  }
  const addMs = performance.now() - t0;
  const after = await usedMemory(redis);

  const keys = await scanKeys(redis, `${prefix}:`);
  const usage = await memoryUsage(redis, keys);
  const base = `${prefix}:${QUEUES.refresh}:`;
  const classified = classify(usage, base);
  const totalBytes = [...usage.values()].reduce((a, b) => a + b, 0);
  const sample = `${base}${Math.ceil(MEM.users / 2)}`;
  const oneJob = usage.get(sample) ?? Number.NaN;
  const delayedCount = await queue.getJobCountByTypes("delayed");
  const completedBytes = await completedJobBytes(ctx, redis, prefix, users[0] as string, clock);
  const policy = ((await redis.call("CONFIG", "GET", "maxmemory-policy")) as string[] | null)?.[1] ?? "?";
  const perUserKeys = perUserBytes(classified);
  memNotes(ctx, { u: classified, perUserKeys, addMs, delayedCount, completedBytes, policy });

  const infoDelta = (after - before) / MEM.users;
  return [
    {
      metric: "used_memory delta per scheduled user",
      value: Math.round(infoDelta),
      unit: "B",
      detail: `INFO memory: ${fmtBytes(before)} → ${fmtBytes(after)} for ${MEM.users.toLocaleString("en")} users (noisy: shared Redis)`,
    },
    {
      metric: "MEMORY USAGE per scheduled user",
      value: Math.round(perUserKeys),
      unit: "B",
      detail: "(job hashes + dedup keys + delayed set) / users",
    },
    {
      metric: "ratio INFO delta / MEMORY USAGE of every key",
      value: (after - before) / totalBytes,
      unit: "×",
      detail: `all ${keys.length.toLocaleString("en")} keys of the prefix incl. the events stream (${fmtBytes(totalBytes)}); allocator overhead and other clients' activity make it ≠ 1`,
    },
    {
      metric: "MEMORY USAGE of one job hash",
      value: oneJob,
      unit: "B",
      detail: `${sample.slice(prefix.length + 1)}: name, data {userUlid}, opts (priority, dedup, retries, removeOn*), delay, timestamp, priority, deid`,
    },
    {
      metric: "MEMORY USAGE of one completed job hash",
      value: completedBytes,
      unit: "B",
      detail: "with returnvalue, processedOn, finishedOn, attemptsMade",
    },
  ];
}

const delayedBytes = (u: Usage) => u.structures.find((s) => s.name === "delayed")?.bytes ?? 0;

/** MEMORY USAGE per scheduled user: (job hashes + dedup keys + delayed set) / users. */
function perUserBytes(u: Usage): number {
  return (u.jobBytes + u.dedupBytes + delayedBytes(u)) / MEM.users;
}

interface MemFigures {
  u: Usage;
  perUserKeys: number;
  addMs: number;
  delayedCount: number;
  completedBytes: number;
  policy: string;
}

function memNotes(ctx: BenchContext, r: MemFigures): void {
  const { jobBytes, jobCount, dedupBytes, dedupCount, structures } = r.u;
  const { perUserKeys, addMs, delayedCount, completedBytes, policy } = r;
  const delayed = delayedBytes(r.u);
  const events = structures.find((s) => s.name === "events")?.bytes ?? 0;
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
}

export const redisMemorySection: Section = {
  name: "redis-memory",
  title: "Redis memory per scheduled user",
  goal: "none (input for the capacity table)",
  run: redisMemory,
};
