import { loadConfig, type Config } from "../config/config.js";
import { createLogger, type Logger } from "../log/logger.js";
import { ConfigError } from "../core/errors.js";

/**
 * Parses the environment once for an entry point. A bad configuration stops the process before
 * anything starts, with every problem listed on stderr and exit code 2 (usage/config error).
 */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/**
 * A start that failed. A configuration problem found after parsing (the check of the stored token kinds
 * against the configured Cal.com clients, docs/oauth2.md#the-boot-check) exits 2 like a bad environment,
 * with its lines on stderr; anything else exits 1.
 */
export function exitOnStartFailure(processName: "worker" | "web"): (err: unknown) => never {
  return (err) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${processName} failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
}

/** The process's root logger; settings the configuration normalised (e.g. a `/v2` base URL) are logged once. */
export function processLogger(config: Config, processName: "worker" | "web" | "release"): Logger {
  const logger = createLogger({ level: config.logLevel, base: { service: "cal-token-worker", process: processName } });
  if (config.notes.length > 0) logger.warn({ notes: config.notes }, "configuration normalised");
  return logger;
}
