import { appendFileSync } from "node:fs";
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/log/logger.js";

/**
 * A logger for tests: every JSON line goes to the run's log file (scanned for leaked tokens at
 * teardown) and into `lines` for assertions. Level `debug` so the scan sees as much as possible.
 */
export function testLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const captured: string[] = [];
  const file = process.env.TEST_LOG_FILE;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString("utf8");
      captured.push(text);
      if (file) appendFileSync(file, text);
      cb();
    },
  });
  const logger = createLogger({ level: "debug", destination: stream });
  return {
    logger,
    lines: () =>
      captured
        .join("")
        .split("\n")
        .filter((l) => l.trim().length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Records anything a test received from the code under test (results, errors) for the leak scan. */
export function recordForSecretScan(value: unknown): void {
  const file = process.env.TEST_LOG_FILE;
  if (!file) return;
  const text =
    value instanceof Error
      ? JSON.stringify({ name: value.name, message: value.message, stack: value.stack, cause: String(value.cause ?? "") })
      : JSON.stringify(value, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v));
  appendFileSync(file, `${text}\n`);
}
