/**
 * The `release` phase (runs once per deploy, before new dynos start): apply migrations, then upsert
 * the sweep's job scheduler from one process (concurrent upserts at boot are a known BullMQ trouble
 * spot). `prisma migrate deploy` and this runner record migrations identically, so either may run.
 */
import { Queue } from "bullmq";
import { loadConfigOrExit, processLogger } from "./boot.js";
import { queueConnection } from "../queue/connection.js";
import { QUEUES } from "../queue/names.js";
import { applyMigrations, MIGRATIONS_DIR } from "../store/migrate.js";
import { ensureSweepScheduler } from "../queue/sweep-scheduler.js";

async function main(): Promise<number> {
  const config = loadConfigOrExit();
  const logger = processLogger(config, "release");
  const migrations = await applyMigrations(config.databaseUrl, MIGRATIONS_DIR);
  logger.info(migrations, "migrations applied");
  const redis = queueConnection(config, "worker");
  const sweepQueue = new Queue(QUEUES.sweep, { connection: redis.connection, prefix: config.queuePrefix });
  try {
    await ensureSweepScheduler(sweepQueue, config.sweepIntervalMs);
    logger.info({ everyMs: config.sweepIntervalMs }, "sweep scheduler ensured");
  } finally {
    await sweepQueue.close();
    await redis.close();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`release failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
