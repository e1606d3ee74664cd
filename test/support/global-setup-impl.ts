import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createTestDatabase } from "./test-db.js";

/**
 * One database per test run (dropped in global-teardown), one queue prefix per run, and files that
 * collect every log line and every token the fake Cal.com issued, for the leak scan at teardown.
 * Jest workers are forked after this runs, so they inherit these variables.
 */
export default async function globalSetup(): Promise<void> {
  const runId = `${process.pid}_${randomBytes(3).toString("hex")}`;
  const dbName = `ctw_test_${runId}`;
  process.env.TEST_DATABASE_NAME = dbName;
  process.env.TEST_DATABASE_URL = await createTestDatabase(dbName);
  process.env.TEST_RUN_ID = runId;
  process.env.TEST_QUEUE_PREFIX = `ctwtest${runId}`;
  const dir = mkdtempSync(path.join(tmpdir(), "ctw-test-"));
  process.env.TEST_ARTIFACTS_DIR = dir;
  process.env.TEST_LOG_FILE = path.join(dir, "logs.ndjson");
  process.env.TEST_ISSUED_TOKENS_FILE = path.join(dir, "issued-tokens.txt");
}
