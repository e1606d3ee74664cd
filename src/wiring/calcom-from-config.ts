/** The Cal.com token API (src/calcom/token-api.ts) configured from one parsed Config: each kind of client only if set. */
import { createCalcomTokenApi, type HttpCalcomTokenApi } from "../calcom/token-api.js";
import type { Config } from "../config/config.js";
import type { Logger } from "../log/logger.js";

export function calcomTokenApiFromConfig(config: Config, logger: Logger): HttpCalcomTokenApi {
  const c = config.calcom;
  return createCalcomTokenApi({
    baseUrl: c.apiUrl,
    ...(c.platform ? { clientId: c.platform.clientId, clientSecret: c.platform.clientSecret } : {}),
    ...(c.oauth2 ? { oauth2: c.oauth2 } : {}),
    timeoutMs: c.timeoutMs,
    logger,
  });
}
