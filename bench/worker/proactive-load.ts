/**
 * proactive-vs-reactive, the load: its parameters, the open-loop caller and the two phases (worker
 * off, then the worker started in-process). The section itself is in proactive.ts.
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import type { Config } from "../../src/config/config.js";
import type { WorkerApp } from "../../src/wiring/worker-app.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { OutcomeEvent } from "../../src/refresh/types.js";
import type { BenchContext } from "../lib/types.js";
import { prng, sleep, startWorker } from "./shared.js";

export const PVR = {
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

export interface CallSample {
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

/** The section's time origin; restarted when the load starts. Read by the outcome hooks too. */
export interface Timeline {
  t0: number;
}

export interface OpenLoop {
  samples: CallSample[];
  inflight: Set<Promise<void>>;
  /** ms between two calls. */
  interval: number;
  /** Stops firing calls; resolves when the firing loop has ended (calls in flight may still run). */
  stop(): Promise<void>;
}

export interface Phases {
  aStart: number;
  aEnd: number;
  bStart: number;
  bEnd: number;
  workerStartMs: number;
  app: WorkerApp;
}

export const isRefresh = (e: OutcomeEvent) => e.outcome === "REFRESHED" || e.outcome === "FORCE_REFRESHED";

/** Open-loop load, one run across both phases; restarts the timeline. */
export function startLoad(
  client: CalTokenClient,
  users: string[],
  als: AsyncLocalStorage<{ leftMs?: number }>,
  bufferMs: number,
  clock: Timeline,
): OpenLoop {
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
    samples.push({ at: start - clock.t0, ms, waited: leftMs <= bufferMs, refreshed: r.refreshed, ok: r.success, leftMs, lagMs });
  };
  clock.t0 = performance.now();
  const load = (async () => {
    for (let k = 0; running; k++) {
      const due = clock.t0 + k * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (!running) break;
      const p = call(users[Math.floor(pick() * users.length)] as string, Math.max(0, performance.now() - due)).catch(() => undefined);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  })();
  const stop = async () => {
    running = false;
    await load;
  };
  return { samples, inflight, interval, stop };
}

/** Phase A with the worker off, then the worker in-process, warm-up and phase B; stops the load. */
export async function runPhases(
  ctx: BenchContext,
  config: Config,
  load: OpenLoop,
  clock: Timeline,
  workerRefreshes: number[],
): Promise<Phases> {
  ctx.progress(`phase A (worker off): ${PVR.settleMs / 1000} s settle + ${PVR.phaseMs / 1000} s measured, ${PVR.rate} calls/s`);
  await sleep(PVR.settleMs + PVR.phaseMs);
  const aStart = PVR.settleMs;
  const aEnd = performance.now() - clock.t0;
  let app: WorkerApp;
  const workerStartT0 = performance.now();
  try {
    app = await startWorker(ctx, config, (e) => void (isRefresh(e) && workerRefreshes.push(performance.now() - clock.t0)));
  } catch (err) {
    await load.stop();
    throw err;
  }
  const workerStartMs = performance.now() - workerStartT0;
  const bStart = performance.now() - clock.t0 + PVR.warmupMs;
  ctx.progress(`worker on; warm-up ${PVR.warmupMs / 1000} s, then phase B ${PVR.phaseMs / 1000} s`);
  await sleep(PVR.warmupMs + PVR.phaseMs);
  const bEnd = performance.now() - clock.t0;
  await load.stop();
  await Promise.allSettled([...load.inflight]);
  return { aStart, aEnd, bStart, bEnd, workerStartMs, app };
}
