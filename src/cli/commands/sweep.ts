/**
 * `cal-tokens sweep [--dry-run] [--json]`: one sweep now, as the worker's scheduler runs it (ACTIVE
 * rows due within two sweep intervals get their delayed refresh job). --dry-run only counts them
 * and needs no Redis.
 */
import type { Queue } from "bullmq";
import type { Command } from "commander";
import { createSweep } from "../../../jobs/sweep.js";
import { grantPolicy } from "../../config/config.js";
import { queueConnection, type QueueConnection } from "../../queue/connection.js";
import type { RefreshJobData } from "../../queue/names.js";
import { createRefreshQueue } from "../../queue/refresh-queue.js";
import { checkRedis, errLine, jsonLine, line, withContext, withPrisma, type CliContext, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

/** A manual run may take longer than a scheduled tick (which leaves the rest to the next one). */
const BUDGET_MS = 5 * 60_000;

export function registerSweep(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("sweep")
    .option("--dry-run", "only count the due rows; enqueue nothing")
    .option("--json", "print one JSON object (docs/cli.md#json-output)")
    .description("run one sweep now: (re)schedule the refresh job of every ACTIVE row due soon")
    .action(async (opts: { dryRun?: boolean; json?: boolean }) =>
      done(await withContext(deps, { json: opts.json === true }, (ctx) => runSweep(ctx, opts.dryRun === true))),
    );
}

async function runSweep(ctx: CliContext, dryRun: boolean): Promise<number> {
  const horizonMs = ctx.config.sweepIntervalMs * 2;
  return withPrisma(ctx, async (prisma) => {
    // A dry run never touches the queue, so it needs no Redis.
    if (!dryRun) await checkRedis(ctx);
    const redis = dryRun ? null : queueConnection(ctx.config, "producer");
    const queue = redis ? openQueue(ctx, redis) : noQueue();
    let result: Awaited<ReturnType<ReturnType<typeof createSweep>>>;
    try {
      result = await createSweep({ prisma, queue, logger: ctx.logger, clock: ctx.clock, policy: grantPolicy(ctx.config) })(
        { horizonMs, budgetMs: BUDGET_MS },
        dryRun,
      );
    } finally {
      if (redis) {
        await queue.close();
        await redis.close();
      }
    }
    const { visited, pages, durationMs, complete } = result;
    const within = `due within ${Math.round(horizonMs / 1000)} s`;
    if (ctx.json) jsonLine(ctx.io, { dryRun, horizonSeconds: Math.round(horizonMs / 1000), visited, pages, durationMs, complete });
    else if (dryRun) line(ctx.io, `sweep (dry run): ${visited} row(s) ${within}; nothing enqueued`);
    else line(ctx.io, `sweep: ${visited} row(s) ${within} scheduled (${pages} page(s), ${durationMs} ms)`);
    if (!complete) {
      errLine(ctx.io, "cal-tokens: the sweep stopped at its time budget; run it again (the worker's sweeps also continue)");
      return EXIT.failed;
    }
    return EXIT.ok;
  });
}

function openQueue(ctx: CliContext, redis: QueueConnection): Queue<RefreshJobData> {
  const queue = createRefreshQueue({ connection: redis.connection, prefix: ctx.config.queuePrefix });
  queue.on("error", () => undefined); // Redis answered checkRedis; a later loss fails the adds, counted by the sweep
  return queue;
}

function noQueue(): Queue<RefreshJobData> {
  return new Proxy({} as Queue<RefreshJobData>, {
    get() {
      throw new Error("sweep --dry-run must not use the queue");
    },
  });
}
