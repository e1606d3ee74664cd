import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import fastifyBasicAuth from "@fastify/basic-auth";
import type { Job, Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { withTimeout } from "../core/timeout.js";
import type { Logger } from "../log/logger.js";
import { boardWriteGuard } from "./board-guard.js";
import {
  BOARD_DATA_KEYS,
  BOARD_RETURN_VALUES,
  pickShown,
  type ReturnValueShape,
  shownProgress,
  shownReturnValue,
} from "./board-redaction.js";
import { credentialsMatch, type BoardCredentials } from "./credentials.js";

export { credentialsMatch, type BoardCredentials } from "./credentials.js";

export interface BoardQueues {
  refresh: Queue;
  sweep: Queue;
  events: Queue;
}

export const BOARD_TITLE = "cal-token-worker";

/** What the board may show of one queue's jobs (./board-redaction.ts). */
interface Shown {
  dataKeys: readonly string[];
  returnValue: ReturnValueShape;
}

/**
 * The delayed set's score is the run time in ms times 0x1000 (BullMQ keeps a 12-bit counter in the
 * low bits for FIFO order among jobs due in the same millisecond).
 */
const DELAYED_SCORE_FACTOR = 0x1000;

/**
 * A BullMQ adapter that shows only allow-listed fields of job data, return values and scheduler
 * templates. The board's job list/detail go through `format()`; the schedulers page does not, so
 * templates are filtered here. (Failure reasons are shown as stored: the refresh processor writes
 * codes, statuses, counts and times only, and no stack for expected failures; the suite's secret
 * scan checks.) The UI offers retries of failed jobs only, and no rate-limit or scheduler editing;
 * the server-side guarantee is the write guard (./board-guard.ts), which also refuses what the UI
 * cannot hide (add, pause, clean…).
 */
class RedactingBullMQAdapter extends BullMQAdapter {
  constructor(
    private readonly source: Queue,
    options: { readOnlyMode: boolean; description: string },
    private readonly shown: Shown,
  ) {
    super(source, retryOptions(options));
    this.setFormatter("data", (data: unknown) => pickShown(data, shown.dataKeys));
    this.setFormatter("returnValue", (value: unknown) => formatReturnValue(value, shown.returnValue));
    this.setFormatter("progress", shownProgress);
  }

  /**
   * The "rate limited" badge. Asked without a threshold, BullMQ answers with the lifetime of the
   * worker limiter's counter, a key that lives a minute after any job ran: a badge in normal
   * operation. Only a pause set on the queue (the refresh processor's `queue.rateLimit()` after a 429,
   * a used-up call budget or a refused client configuration) fills the counter to this threshold.
   */
  override async getActiveRateLimitTtl(): Promise<number> {
    const ttl = await this.source.getRateLimitTtl(Number.MAX_SAFE_INTEGER);
    return Math.max(ttl, 0);
  }

  override async getJobs(...args: Parameters<BullMQAdapter["getJobs"]>): Promise<Job[]> {
    return this.withRunTimes(await super.getJobs(...args));
  }

  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    return job ? (await this.withRunTimes([job]))[0] : job;
  }

  /**
   * The board shows a delayed job's "Will run at" as `timestamp + opts.delay`, which a retry's backoff
   * or a reschedule makes wrong ("Delay changed; the new run time is currently unknown"). For jobs in
   * the delayed set, the delay shown is set to where the job really sits, so the time is the real
   * one. Display only: the stored job is not touched.
   */
  private async withRunTimes(jobs: Job[]): Promise<Job[]> {
    const delayed = jobs.filter((j) => j.id !== undefined && ((j.delay ?? 0) > 0 || (j.opts.delay ?? 0) > 0));
    if (delayed.length === 0) return jobs;
    const client = await this.source.getBackend().client;
    const key = this.source.toKey("delayed");
    await Promise.all(
      delayed.map(async (job) => {
        const score = await client.zscore(key, job.id as string);
        if (score === null) return;
        const delay = Math.max(1, Math.floor(Number(score) / DELAYED_SCORE_FACTOR) - job.timestamp);
        job.opts = { ...job.opts, delay };
        job.delay = delay;
      }),
    );
    return jobs;
  }

  override get supportsGlobalRateLimit(): boolean {
    return false;
  }

  override get supportsJobSchedulerUpdate(): boolean {
    return false;
  }

  override get supportsJobSchedulerRun(): boolean {
    return false;
  }

  override async getJobSchedulers(): ReturnType<BullMQAdapter["getJobSchedulers"]> {
    const schedulers = await super.getJobSchedulers();
    const keys = this.shown.dataKeys;
    return schedulers.map((s) => (s.template ? { ...s, template: { ...s.template, data: pickShown(s.template.data, keys) } } : s));
  }
}

/** Retries of failed jobs only (the UI offers no retry of completed ones); none on a read-only queue. */
function retryOptions(options: { readOnlyMode: boolean; description: string }): ConstructorParameters<typeof BullMQAdapter>[1] {
  // allowCompletedRetries is read by the base adapter but missing from BullMQAdapter's option type.
  const all = { ...options, allowRetries: !options.readOnlyMode, allowCompletedRetries: false };
  return all;
}

function formatReturnValue(value: unknown, shape: ReturnValueShape): unknown {
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return value;
  return shownReturnValue(value, shape);
}

type ApiRoutes = Parameters<FastifyAdapter["setApiRoutes"]>[0];
type BoardErrorHandler = Parameters<FastifyAdapter["setErrorHandler"]>[0];

/**
 * Every board API call is bounded: a Redis that hangs turns into a TimeoutError, which the error
 * handler answers with 503, instead of a request that waits for Redis to come back.
 */
class BoundedFastifyAdapter extends FastifyAdapter {
  constructor(private readonly timeoutMs: number) {
    super();
  }

  override setApiRoutes(routes: ApiRoutes): FastifyAdapter {
    const bounded = routes.map((route) => ({
      ...route,
      handler: (request?: Parameters<(typeof route)["handler"]>[0]) =>
        withTimeout(Promise.resolve(route.handler(request)), this.timeoutMs, "Bull Board API call"),
    }));
    return super.setApiRoutes(bounded as ApiRoutes);
  }
}

/**
 * What a thrown error becomes. The board's handlers return their expected failures (404, 400 …) and
 * throw only when Redis fails or does not answer in time, so a throw is a 503; Fastify's own client
 * errors (401 from basic auth, a malformed body) keep their status. Raw error messages (driver errors)
 * are logged, not sent.
 */
function boardErrorHandler(log: Logger): BoardErrorHandler {
  return (error) => {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (typeof status === "number" && status >= 400 && status < 500) {
      return { status: status as 400, body: { error: { key: "ERRORS.INTERNAL_SERVER_ERROR" }, message: error.message } };
    }
    log.warn({ err: error }, "Bull Board call failed: the queue store did not answer");
    // The board's HTTPStatus type lists no 503; the adapter passes any number through to Fastify.
    const unavailable = 503 as 500;
    return { status: unavailable, body: { error: { key: "ERRORS.REDIS_UNAVAILABLE" }, message: "the queue store (Redis) did not answer" } };
  };
}

/**
 * Mounts Bull Board at `basePath` inside its own encapsulated plugin, so basic auth and the write
 * guard cover the board's pages, assets and API, and nothing else on the server. Refresh and sweep
 * allow retrying failed jobs and promoting delayed ones; the events queue is read-only.
 */
export function registerBullBoard(
  app: FastifyInstance,
  opts: { queues: BoardQueues; basePath: string; credentials: BoardCredentials | null; logger: Logger; timeoutMs: number },
): void {
  const serverAdapter = new BoundedFastifyAdapter(opts.timeoutMs);
  serverAdapter.setBasePath(opts.basePath);
  createBullBoard({
    queues: [
      new RedactingBullMQAdapter(
        opts.queues.refresh,
        { readOnlyMode: false, description: "Per-user token refresh jobs" },
        { dataKeys: BOARD_DATA_KEYS.refresh, returnValue: BOARD_RETURN_VALUES.refresh },
      ),
      new RedactingBullMQAdapter(
        opts.queues.sweep,
        { readOnlyMode: false, description: "Due-token sweep (job scheduler)" },
        { dataKeys: BOARD_DATA_KEYS.sweep, returnValue: BOARD_RETURN_VALUES.sweep },
      ),
      new RedactingBullMQAdapter(
        opts.queues.events,
        { readOnlyMode: true, description: "Webhook events to the web app" },
        { dataKeys: BOARD_DATA_KEYS.events, returnValue: BOARD_RETURN_VALUES.events },
      ),
    ],
    // Two copies of @bull-board/api are installed (9.10.2 for us, 9.10.1 under @bull-board/fastify); their
    // IServerAdapter types differ only nominally (private members), the runtime contract is the same.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]["serverAdapter"],
    options: { uiConfig: { boardTitle: BOARD_TITLE, hideDocsLink: true } },
  });
  // After createBullBoard, which installs the board's own handler (it echoes raw error messages).
  serverAdapter.setErrorHandler(boardErrorHandler(opts.logger));

  const credentials = opts.credentials;
  const guard = boardWriteGuard({
    basePath: opts.basePath,
    queues: Object.values(opts.queues),
    logger: opts.logger,
    timeoutMs: opts.timeoutMs,
  });
  void app.register(async (scope) => {
    if (credentials) {
      await scope.register(fastifyBasicAuth, {
        validate: async (username, password) => {
          if (!credentialsMatch(credentials, username, password)) throw new Error("Unauthorized");
        },
        authenticate: { realm: BOARD_TITLE },
      });
      scope.addHook("onRequest", scope.basicAuth);
    }
    scope.addHook("onRequest", guard);
    await scope.register(serverAdapter.registerPlugin(), { prefix: opts.basePath });
  });
}
