/**
 * worker-throughput, the rounds: its parameters, one timed drain of a queue by a worker (the refresh
 * worker or the no-op baseline) and the HTTP-only arm. The section itself is in throughput.ts.
 */
import { performance } from "node:perf_hooks";
import type { Job, Queue, Worker } from "bullmq";
import type { HttpCalcomTokenApi } from "../../src/calcom/token-api.js";
import { PRIORITY, type RefreshJobData } from "../../src/queue/names.js";
import { scheduleRefresh } from "../../src/queue/refresh-queue.js";
import type { FakeCalcom } from "../../test/fakes/calcom/index.js";
import { sleep } from "./shared.js";

export const TP = {
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

export interface Drain {
  ms: number;
  cpuUs: number;
  results: Map<string, number>;
  failed: number;
}

/**
 * Adds `users.length` jobs to a paused queue, resumes it and times until the worker reports them all
 * finished. The queue is obliterated first, so every add is real and no earlier job interferes.
 */
export async function drainRound(
  queue: Queue<RefreshJobData>,
  worker: Worker,
  users: string[],
  before?: () => Promise<void>,
): Promise<Drain> {
  await queue.pause();
  await queue.obliterate({ force: true });
  await queue.pause(); // obliterate removed the meta key, and the paused flag with it
  await before?.();
  const clock = () => new Date();
  const at = new Date();
  for (let i = 0; i < users.length; i += 250) {
    await Promise.all(users.slice(i, i + 250).map((u) => scheduleRefresh(queue, u, at, PRIORITY.idle, clock)));
  }
  const results = new Map<string, number>();
  let done = 0;
  let failed = 0;
  let finish: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (finish = resolve));
  const onCompleted = (_job: Job, value: unknown) => {
    const key =
      typeof value === "object" && value !== null && "result" in value ? String((value as { result: unknown }).result) : String(value);
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
export async function httpRound(calcom: HttpCalcomTokenApi, fake: FakeCalcom, n: number, concurrency: number): Promise<Drain> {
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
