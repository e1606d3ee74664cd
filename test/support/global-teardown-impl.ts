import { existsSync, readFileSync, rmSync } from "node:fs";
import { deleteRedisKeys } from "./redis-keys.js";
import { dropTestDatabase } from "./test-db.js";

/**
 * Drops the run's database, then proves "no secret leaves the row" across the whole suite
 * (docs/architecture.md#invariant-6-no-secret-leaves-the-row): no token string the fake Cal.com ever
 * issued appears in any log line or recorded error (test/support/log-sink.ts writes both to
 * TEST_LOG_FILE). Throwing here fails the run.
 */
export default async function globalTeardown(): Promise<void> {
  const dbName = process.env.TEST_DATABASE_NAME;
  if (dbName) await dropTestDatabase(dbName);
  if (process.env.TEST_QUEUE_PREFIX)
    await deleteRedisKeys(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", process.env.TEST_QUEUE_PREFIX);

  const logFile = process.env.TEST_LOG_FILE;
  const tokensFile = process.env.TEST_ISSUED_TOKENS_FILE;
  const dir = process.env.TEST_ARTIFACTS_DIR;
  try {
    if (!logFile || !tokensFile || !existsSync(tokensFile)) return;
    const logs = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    const tokens = readFileSync(tokensFile, "utf8")
      .split("\n")
      .filter((t) => t.length >= 16);
    const leaked = tokens.filter((t) => logs.includes(t));
    if (leaked.length > 0) {
      throw new Error(
        `secret scan: ${leaked.length} issued token(s) appear in logs or errors (e.g. one starting ${leaked[0]!.slice(0, 10)}…)`,
      );
    }
    if (tokens.length === 0 || logs.length === 0) {
      throw new Error(`secret scan saw nothing to check (tokens: ${tokens.length}, log bytes: ${logs.length}): the scan itself is broken`);
    }
    process.stdout.write(
      `\nsecret scan: ${tokens.length} issued tokens checked against ${logs.length} bytes of logs and errors: none found\n`,
    );
  } finally {
    if (dir && !process.env.KEEP_TEST_ARTIFACTS) rmSync(dir, { recursive: true, force: true });
  }
}
