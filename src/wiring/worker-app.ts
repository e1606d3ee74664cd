/**
 * Composition root of the worker process: BullMQ workers for the refresh queue, the sweep (driven by
 * a job scheduler) and event delivery. Builds every dependency from one Config; each resource
 * registers its closer as it is created (src/wiring/releasers.ts), so `close()` runs them in reverse:
 * stop the timers, stop taking jobs (worker.close() waits for active jobs, so a refresh whose request
 * was sent is never aborted), flush held pairs (refresher.close), the relay, the events worker, the
 * queues, then the database client. Each step is awaited and a failing one does not stop the rest.
 */
import { type ConnectionOptions, Queue, Worker } from "bullmq";
import { createDeliverEventProcessor } from "../../jobs/deliver-event.js";
import { refreshBackoffStrategy } from "../../jobs/refresh-report.js";
import { createRefreshProcessor } from "../../jobs/refresh-token.js";
import { createSweep, createSweepProcessor } from "../../jobs/sweep.js";
import { type Config, grantPolicy } from "../config/config.js";
import { backoffDelayMs } from "../core/policy.js";
import type { Clock, Rand } from "../core/types.js";
import { isUlid } from "../core/ulid.js";
import { createAlertSink } from "../events/alert-sink.js";
import { createEventRelay } from "../events/relay.js";
import type { DeliverEventJobData } from "../events/types.js";
import { componentLogger, type Logger } from "../log/logger.js";
import { queueConnection } from "../queue/connection.js";
import { JOBS_PER_BUDGETED_CALL, QUEUES, type RefreshJobData } from "../queue/names.js";
import { clearQueueOverrides } from "../queue/queue-overrides.js";
import { createRefreshQueue } from "../queue/refresh-queue.js";
import { ensureSweepScheduler } from "../queue/sweep-scheduler.js";
import { startWatchdog } from "../queue/watchdog.js";
import type { Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createEventStore, type EventStore } from "../store/event-store.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { checkClientsForStoredKinds } from "./client-check.js";
import { createRefreshStack, type RefreshStack } from "./refresh-stack.js";
import { createReleasers, type Releasers } from "./releasers.js";

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

interface Queues {
  refresh: Queue<RefreshJobData>;
  sweep: Queue;
  events: Queue<DeliverEventJobData>;
}

/** What every part of the worker is built from. */
interface Parts {
  config: Config;
  opts: WorkerAppOptions;
  log: Logger;
  clock: Clock;
  rand: Rand;
  releasers: Releasers;
  connection: ConnectionOptions;
  prisma: PrismaClient;
}

export async function startWorkerApp(config: Config, opts: WorkerAppOptions): Promise<WorkerApp> {
  const log = componentLogger(opts.logger, "refreshRequests");
  const releasers = createReleasers(log);
  const clock = opts.clock ?? (() => new Date());
  const rand = opts.rand ?? Math.random;
  const prisma = createPrisma(config.databaseUrl, { max: Math.max(4, config.workerConcurrency + 2) });
  releasers.add("prisma", () => prisma.$disconnect());
  await checkClientsForStoredKinds(config, prisma, log, releasers);
  // One Redis connection setting for every queue and worker; on a cluster, one shared Cluster that is
  // closed after all of them (BullMQ closes only the blocking duplicates it made).
  const redis = queueConnection(config, "worker");
  releasers.add("redis connection", () => redis.close());
  const parts: Parts = { config, opts, log, clock, rand, releasers, connection: redis.connection, prisma };
  const queues = openQueues(parts);
  // Events: status flips are written with their outbox row; the relay moves them to the queue.
  const eventStore = createEventStore({ prisma });
  startEventsWorker(parts, eventStore);
  const relay = createEventRelay({ eventStore, queue: queues.events, logger: opts.logger, clock });
  releasers.add("event relay", () => relay.close());
  const alerts = createAlertSink({ eventStore, relay, logger: opts.logger });
  const stack = createRefreshStack({
    config,
    logger: opts.logger,
    clock,
    rand,
    releasers,
    prisma,
    alerts,
    ...(opts.onOutcome ? { onOutcome: opts.onOutcome } : {}),
  });
  const { refresher } = stack;
  // Before the refresh worker takes a job: the configured budget and concurrency, not Redis's, apply.
  await clearQueueOverrides(queues.refresh, log);
  const refreshWorker = startRefreshWorker(parts, queues.refresh, stack);
  const sweepWorker = startSweepWorker(parts, queues.refresh, refresher);
  // Stop taking jobs and let in-flight refreshes finish and persist (before held pairs are flushed).
  releasers.add("refresh and sweep workers", () => Promise.allSettled([refreshWorker.close(), sweepWorker.close()]));

  await keepSweepScheduled(parts, queues.sweep);
  refresher.heldPairs.start(1_000);
  relay.start(2_000);
  startStallWatchdog(parts, queues.refresh, refreshWorker);
  // Runs first on close (SIGTERM): refreshes still in flight stop retrying their database write and
  // leave the pair held (already in Redis) instead of racing the shutdown deadline.
  releasers.add("stop write retries", () => refresher.stopRetrying());
  log.info(
    { concurrency: config.workerConcurrency, prefix: config.queuePrefix, ratePerMinute: config.refresh.ratePerMinute },
    "worker started",
  );

  let closing: Promise<void> | null = null;
  return {
    refreshQueue: queues.refresh,
    sweepQueue: queues.sweep,
    eventsQueue: queues.events,
    refreshWorker,
    sweepWorker,
    close() {
      closing ??= releasers.closeAll().then(() => log.info("worker stopped"));
      return closing;
    },
  };
}

function openQueues({ connection, config, log, releasers }: Parts): Queues {
  const prefix = config.queuePrefix;
  const queues: Queues = {
    refresh: createRefreshQueue({ connection, prefix }),
    sweep: new Queue(QUEUES.sweep, { connection, prefix }),
    events: new Queue<DeliverEventJobData>(QUEUES.events, { connection, prefix }),
  };
  const all = Object.values(queues) as Queue[];
  releasers.add("queues", () => Promise.allSettled(all.map((q) => q.close())));
  // Without a listener, BullMQ prints every connection error of a Queue to console.error (raw, not JSON).
  for (const q of all) q.on("error", (err) => log.warn({ err, queue: q.name }, "queue connection error"));
  return queues;
}

function startEventsWorker({ config, opts, connection, log, releasers }: Parts, eventStore: EventStore): Worker<DeliverEventJobData> {
  const worker = new Worker<DeliverEventJobData>(
    QUEUES.events,
    createDeliverEventProcessor({
      eventStore,
      webhook: config.events ? { url: config.events.webhookUrl, secret: config.events.secret, timeoutMs: 10_000 } : null,
      logger: opts.logger,
    }),
    { connection, prefix: config.queuePrefix, concurrency: 5 },
  );
  releasers.add("events worker", () => worker.close());
  worker.on("error", (err) => log.error({ err, queue: worker.name }, "worker error"));
  return worker;
}

function startRefreshWorker(parts: Parts, refreshQueue: Queue<RefreshJobData>, stack: RefreshStack): Worker<RefreshJobData> {
  const { opts, clock, log } = parts;
  const processor = createRefreshProcessor({
    ...stack,
    queue: refreshQueue,
    logger: opts.logger,
    clock,
    rand: parts.rand,
    policy: grantPolicy(parts.config),
    retryDelayMs: retryBackoff(parts),
  });
  const worker = new Worker<RefreshJobData>(QUEUES.refresh, processor, refreshWorkerOptions(parts));
  worker.on("error", (err) => log.error({ err, queue: worker.name }, "worker error"));
  worker.on("failed", (job, err) =>
    log.warn(
      // A refused job's data may hold anything: only a ULID is logged as the user.
      {
        jobId: job?.id,
        userUlid: isUlid(job?.data.userUlid) ? job.data.userUlid : undefined,
        attemptsMade: job?.attemptsMade,
        reason: err.message,
      },
      "refresh job attempt failed",
    ),
  );
  return worker;
}

/** Jittered exponential backoff (BullMQ's attemptsMade → ms) for retries the row gives no time for. */
function retryBackoff({ opts, rand }: Parts): (attemptsMade: number) => number {
  const retryBaseMs = opts.retryBaseMs ?? 5_000;
  return (attemptsMade) => backoffDelayMs(attemptsMade - 1, rand, { baseMs: retryBaseMs, maxMs: 5 * 60_000 });
}

function refreshWorkerOptions(parts: Parts) {
  const { config, connection } = parts;
  return {
    connection,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    // Jobs per minute across every worker process (docs/architecture.md#invariant-8-rate-budget): a
    // multiple of the call budget, because most job wakes make no call; the budget limits the calls.
    limiter: { max: config.refresh.ratePerMinute * JOBS_PER_BUDGETED_CALL, duration: 60_000 },
    // A failed attempt names its own retry time (the row's); other errors get the jittered backoff.
    settings: { backoffStrategy: refreshBackoffStrategy(retryBackoff(parts)) },
    // BullMQ renews a live worker's lock every half lock, so a long refresh is not declared stalled;
    // a short lock lets another worker take over a dead one's jobs within seconds. Two token calls for
    // one user can never overlap anyway: the row lease keeps them apart.
    lockDuration: jobLockMs(config),
    stalledInterval: Math.min(30_000, jobLockMs(config)),
  };
}

function startSweepWorker(
  { config, opts, connection, clock, prisma, log }: Parts,
  refreshQueue: Queue<RefreshJobData>,
  refresher: Refresher,
): Worker {
  const sweep = createSweep({
    prisma,
    queue: refreshQueue,
    logger: opts.logger,
    clock,
    policy: grantPolicy(config),
    retentionMs: config.auditRetentionMs,
  });
  const lockMs = Math.max(10_000, config.sweepIntervalMs);
  const worker = new Worker(
    QUEUES.sweep,
    createSweepProcessor({ sweep, heldPairs: refresher.heldPairs, intervalMs: config.sweepIntervalMs, logger: opts.logger }),
    // A short lock: if a worker dies mid-sweep, global concurrency 1 would block the next sweeps
    // until the stalled one is detected, so detect it within about one tick.
    { connection, prefix: config.queuePrefix, concurrency: 1, lockDuration: lockMs, stalledInterval: lockMs },
  );
  worker.on("error", (err) => log.error({ err, queue: worker.name }, "worker error"));
  return worker;
}

async function keepSweepScheduled({ config, log, releasers }: Parts, sweepQueue: Queue): Promise<void> {
  await ensureSweepScheduler(sweepQueue, config.sweepIntervalMs);
  // Redis may lose its state (failover, restart without persistence), and the scheduler with it.
  const check = setInterval(
    () => {
      ensureSweepScheduler(sweepQueue, config.sweepIntervalMs).catch((err: unknown) => log.warn({ err }, "sweep scheduler check failed"));
    },
    Math.max(5_000, config.sweepIntervalMs * 2),
  );
  check.unref();
  releasers.add("sweep scheduler check", () => clearInterval(check));
}

function startStallWatchdog(
  { opts, log, releasers }: Parts,
  refreshQueue: Queue<RefreshJobData>,
  refreshWorker: Worker<RefreshJobData>,
): void {
  const stallMs = opts.watchdogStallMs ?? 5 * 60_000;
  if (stallMs <= 0) return;
  const watchdog = startWatchdog({
    queue: refreshQueue,
    worker: refreshWorker,
    stallMs,
    logger: opts.logger,
    onStall:
      opts.onFatal ??
      ((reason) => {
        log.fatal({ reason }, "worker stalled; exiting so the dyno manager restarts it");
        process.exit(1);
      }),
  });
  releasers.add("stall watchdog", () => watchdog.stop());
}

/** The BullMQ lock of a refresh job: one call lease plus the base lease (renewed while the worker lives). */
function jobLockMs(config: Config): number {
  return config.calcom.timeoutMs + 2_000 + config.refresh.leaseMs;
}
