import { loadConfig, type Config } from "../config/config.js";
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
