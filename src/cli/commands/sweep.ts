/**
 * `cal-tokens sweep [--dry-run]`: one sweep now, as the worker's scheduler runs it (ACTIVE rows due
 * within two sweep intervals get their delayed refresh job). --dry-run only counts them.
 */
import type { Queue } from "bullmq";
import type { Command } from "commander";
import { createSweep } from "../../../jobs/sweep.js";
import { AppError, ERROR_CODES } from "../../core/errors.js";
import { producerConnection } from "../../queue/connection.js";
import type { RefreshJobData } from "../../queue/names.js";
import { createRefreshQueue } from "../../queue/refresh-queue.js";
import { errLine, line, withContext, withPrisma, type CliContext, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";
import { TimeoutError, withTimeout } from "../../core/timeout.js";

/** A manual run may take longer than a scheduled tick (which leaves the rest to the next one). */
const BUDGET_MS = 5 * 60_000;
const REDIS_READY_TIMEOUT_MS = 5_000;

export function registerSweep(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("sweep")
    .option("--dry-run", "only count the due rows; enqueue nothing")
    .description("run one sweep now: (re)schedule the refresh job of every ACTIVE row due soon")
    .action(async (opts: { dryRun?: boolean }) => done(await withContext(deps, (ctx) => runSweep(ctx, opts.dryRun === true))));
}

async function runSweep(ctx: CliContext, dryRun: boolean): Promise<number> {
  const horizonMs = ctx.config.sweepIntervalMs * 2;
  const queue = dryRun ? null : await openQueue(ctx);
  try {
    const result = await withPrisma(ctx, (prisma) =>
      // A dry run never touches the queue, so it needs no Redis.
      createSweep({ prisma, queue: queue ?? noQueue(), logger: ctx.logger, clock: ctx.clock })({ horizonMs, budgetMs: BUDGET_MS }, dryRun),
    );
    const within = `due within ${Math.round(horizonMs / 1000)} s`;
    line(
      ctx.io,
      dryRun
        ? `sweep (dry run): ${result.visited} row(s) ${within}; nothing enqueued`
        : `sweep: ${result.visited} row(s) ${within} scheduled (${result.pages} page(s), ${result.durationMs} ms)`,
    );
    if (!result.complete) {
      errLine(ctx.io, "cal-tokens: the sweep stopped at its time budget; run it again (the worker's sweeps also continue)");
      return EXIT.failed;
    }
    return EXIT.ok;
  } finally {
    await queue?.close();
  }
}

async function openQueue(ctx: CliContext): Promise<Queue<RefreshJobData>> {
  const queue = createRefreshQueue({ connection: producerConnection(ctx.config.redisUrl), prefix: ctx.config.queuePrefix });
  queue.on("error", () => undefined); // reported through the timeout below
  try {
    await withTimeout(queue.waitUntilReady(), REDIS_READY_TIMEOUT_MS, "redis connect");
    return queue;
  } catch (err) {
    await queue.close().catch(() => undefined);
    throw err instanceof TimeoutError ? new AppError(ERROR_CODES.queueUnavailable, "Redis is not reachable", { retryable: true }) : err;
  }
}

function noQueue(): Queue<RefreshJobData> {
  return new Proxy({} as Queue<RefreshJobData>, {
    get() {
      throw new Error("sweep --dry-run must not use the queue");
    },
  });
}
