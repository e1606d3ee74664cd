/**
 * Composition root of the worker process: BullMQ workers for the refresh queue, the sweep (driven by
 * a job scheduler) and event delivery. Builds every dependency from one Config; `close()` stops in
 * order and never aborts a refresh whose request was sent (worker.close() waits for active jobs).
 */
import { Queue, Worker, type Job } from "bullmq";
import { createDeliverEventProcessor } from "../../jobs/deliver-event.js";
import { createRefreshProcessor } from "../../jobs/refresh-token.js";
import { createSweep } from "../../jobs/sweep.js";
import type { Config } from "../config/config.js";
import { backoffDelayMs } from "../core/policy.js";
import type { Clock, Rand } from "../core/types.js";
import { createAlertSink } from "../events/alert-sink.js";
import { createEventRelay } from "../events/relay.js";
import type { DeliverEventJobData } from "../events/types.js";
import { componentLogger, type Logger } from "../log/logger.js";
import { workerConnection } from "../queue/connection.js";
import { JOB_NAMES, QUEUES, SWEEP_SCHEDULER_ID, type RefreshJobData } from "../queue/names.js";
import { createRefreshQueue } from "../queue/refresh-queue.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createEventStore } from "../store/event-store.js";
import { createPrisma } from "../store/prisma.js";
import { createRefreshStack } from "./refresh-stack.js";
import { startWatchdog } from "./watchdog.js";

export interface WorkerAppOptions {
  logger: Logger;
  clock?: Clock;
  rand?: Rand;
  /** Retry backoff base for failed refresh jobs (tests shorten it). */
  retryBaseMs?: number;
  /** Stall watchdog: exit when jobs wait but none run for this long (0 disables). */
  watchdogStallMs?: number;
  onOutcome?: (event: OutcomeEvent) => void;
  /** Called when the watchdog decides the process must be restarted. Default: exit(1). */
  onFatal?: (reason: string) => void;
}

export interface WorkerApp {
  refreshQueue: Queue<RefreshJobData>;
  sweepQueue: Queue;
  eventsQueue: Queue<DeliverEventJobData>;
  refreshWorker: Worker<RefreshJobData>;
  sweepWorker: Worker;
  close(): Promise<void>;
}

export async function startWorkerApp(config: Config, opts: WorkerAppOptions): Promise<WorkerApp> {
  const log = componentLogger(opts.logger, "refreshRequests");
  const clock = opts.clock ?? (() => new Date());
  const rand = opts.rand ?? Math.random;
  const prisma = createPrisma(config.databaseUrl, { max: Math.max(4, config.workerConcurrency + 2) });
  const connection = workerConnection(config.redisUrl);
  const prefix = config.queuePrefix;
  // Events: status flips are written with their outbox row; the relay moves them to the queue.
  const eventStore = createEventStore({ prisma });
  const eventsQueue = new Queue<DeliverEventJobData>(QUEUES.events, { connection, prefix });
  const relay = createEventRelay({ eventStore, queue: eventsQueue, logger: opts.logger, clock });
  const alerts = createAlertSink({ eventStore, relay, logger: opts.logger });
  const stack = createRefreshStack({
    config,
    logger: opts.logger,
    clock,
    rand,
    prisma,
    alerts,
    ...(opts.onOutcome ? { onOutcome: opts.onOutcome } : {}),
  });
  const { refresher, store } = stack;

  const refreshQueue = createRefreshQueue({ connection, prefix });
  const sweepQueue = new Queue(QUEUES.sweep, { connection, prefix });

  const processRefresh = createRefreshProcessor({ store, refresher, queue: refreshQueue, logger: opts.logger, clock });
  const retryBaseMs = opts.retryBaseMs ?? 5_000;
  const refreshWorker = new Worker<RefreshJobData>(QUEUES.refresh, processRefresh, {
    connection,
    prefix,
    concurrency: config.workerConcurrency,
    // One budget for Cal.com's token endpoints across every worker process (invariant 8).
    limiter: { max: config.refresh.ratePerMinute, duration: 60_000 },
    settings: { backoffStrategy: (attemptsMade: number) => backoffDelayMs(attemptsMade - 1, rand, { baseMs: retryBaseMs, maxMs: 5 * 60_000 }) },
    // As long as the row lease, which outlives a refresh (two HTTP timeouts): a slow refresh is not
    // declared stalled and run twice, and a crashed worker's jobs are picked up once its leases lapse.
    lockDuration: config.refresh.leaseMs,
    stalledInterval: Math.min(30_000, config.refresh.leaseMs),
  });

  const sweep = createSweep({ prisma, queue: refreshQueue, logger: opts.logger, clock, retentionMs: config.auditRetentionMs });
  const sweepWorker = new Worker(
    QUEUES.sweep,
    async (job: Job) => {
      // Pairs another process could not write (and may have died holding) are flushed first.
      if (job.data?.dryRun !== true) {
        await refresher.pending.recover().catch((err: unknown) => log.warn({ err }, "recovery records not flushed"));
      }
      return sweep({ horizonMs: config.sweepIntervalMs * 2, budgetMs: Math.max(1_000, config.sweepIntervalMs / 2) }, job.data?.dryRun === true);
    },
    // A short lock: if a worker dies mid-sweep, global concurrency 1 would block the next sweeps
    // until the stalled one is detected, so detect it within about one tick.
    { connection, prefix, concurrency: 1, lockDuration: Math.max(10_000, config.sweepIntervalMs), stalledInterval: Math.max(10_000, config.sweepIntervalMs) },
  );
  const eventsWorker = new Worker<DeliverEventJobData>(
    QUEUES.events,
    createDeliverEventProcessor({
      eventStore,
      webhook: config.events ? { url: config.events.webhookUrl, secret: config.events.secret, timeoutMs: 10_000 } : null,
      logger: opts.logger,
    }),
    { connection, prefix, concurrency: 5 },
  );
  for (const w of [refreshWorker, sweepWorker, eventsWorker] as Worker[]) {
    w.on("error", (err) => log.error({ err, queue: w.name }, "worker error"));
  }
  // Without a listener, BullMQ prints every connection error of a Queue to console.error (raw, not JSON).
  for (const q of [refreshQueue, sweepQueue, eventsQueue] as Queue[]) {
    q.on("error", (err) => log.warn({ err, queue: q.name }, "queue connection error"));
  }
  refreshWorker.on("failed", (job, err) =>
    log.warn({ jobId: job?.id, userUlid: job?.data.userUlid, attemptsMade: job?.attemptsMade, code: err.message }, "refresh job attempt failed"),
  );

  await ensureSweepScheduler(sweepQueue, config.sweepIntervalMs);
  // Redis may lose its state (failover, restart without persistence), and the scheduler with it.
  const schedulerCheck = setInterval(() => {
    ensureSweepScheduler(sweepQueue, config.sweepIntervalMs).catch((err: unknown) => log.warn({ err }, "sweep scheduler check failed"));
  }, Math.max(5_000, config.sweepIntervalMs * 2));
  schedulerCheck.unref();
  refresher.pending.start(1_000);
  relay.start(2_000);
  const watchdog =
    (opts.watchdogStallMs ?? 5 * 60_000) > 0
      ? startWatchdog({
          queue: refreshQueue,
          worker: refreshWorker,
          stallMs: opts.watchdogStallMs ?? 5 * 60_000,
          logger: opts.logger,
          onStall: opts.onFatal ?? ((reason) => {
            log.fatal({ reason }, "worker stalled; exiting so the dyno manager restarts it");
            process.exit(1);
          }),
        })
      : null;
  log.info({ concurrency: config.workerConcurrency, prefix, ratePerMinute: config.refresh.ratePerMinute }, "worker started");

  let closing: Promise<void> | null = null;
  return {
    refreshQueue,
    sweepQueue,
    eventsQueue,
    refreshWorker,
    sweepWorker,
    close() {
      closing ??= (async () => {
        watchdog?.stop();
        clearInterval(schedulerCheck);
        // Stop taking jobs and let in-flight refreshes finish and persist.
        await Promise.allSettled([refreshWorker.close(), sweepWorker.close()]);
        await stack.close(); // flushes held pairs while the database client is still open
        await relay.close();
        await eventsWorker.close();
        await Promise.allSettled([refreshQueue.close(), sweepQueue.close(), eventsQueue.close()]);
        await prisma.$disconnect();
        log.info("worker stopped");
      })();
      return closing;
    },
  };
}

/**
 * One sweep per tick across every process: a job scheduler keeps exactly one delayed job, and global
 * concurrency 1 stops a slow sweep from overlapping the next tick. Upsert only when missing or
 * changed, because concurrent upserts at boot are a known trouble spot.
 */
export async function ensureSweepScheduler(sweepQueue: Queue, everyMs: number): Promise<void> {
  const existing = await sweepQueue.getJobScheduler(SWEEP_SCHEDULER_ID);
  if (!existing || existing.every !== everyMs) {
    await sweepQueue.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { every: everyMs },
      { name: JOB_NAMES.sweep, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } } },
    );
  }
  await sweepQueue.setGlobalConcurrency(1);
}
