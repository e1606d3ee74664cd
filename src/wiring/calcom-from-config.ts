/** The Cal.com token API (src/calcom/token-api.ts) configured from one parsed Config. */
import { createCalcomTokenApi, type HttpCalcomTokenApi } from "../calcom/token-api.js";
import type { Config } from "../config/config.js";
import type { Logger } from "../log/logger.js";

export function calcomTokenApiFromConfig(config: Config, logger: Logger): HttpCalcomTokenApi {
  const c = config.calcom;
  return createCalcomTokenApi({
    baseUrl: c.apiUrl,
    clientId: c.clientId,
    clientSecret: c.clientSecret,
    oauth2: c.oauth2,
    timeoutMs: c.timeoutMs,
    logger,
  });
}
