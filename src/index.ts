/** Public entry point of `cal-token-worker` (docs/architecture.md#public-surface: these names are a contract). */
export {
  ensureValidCalToken,
  handleCalApiResponse,
  saveCalTokens,
  getCalTokenStatus,
  requestCalTokenRefresh,
  completeCalConnection,
  closeCalTokenClient,
} from "./wiring/default-client.js";
export { createCalTokenClient } from "./wiring/cal-token-client.js";
export type { CalTokenClient, CalTokenClientOptions } from "./wiring/cal-token-client.js";
export type { CompleteCalConnectionInput, HandleApiResponseOptions, RequestRefreshOptions } from "./ondemand/on-demand-service.js";
export type {
  CalTokenInfo,
  CalTokenKind,
  CalTokenStatus,
  CalTokenStatusReport,
  SaveCalTokensInput,
  TokenRefreshResult,
} from "./ondemand/types.js";
export { AppError, ConfigError, ERROR_CODES, type ErrorCode } from "./core/errors.js";
export { loadConfig, type Config } from "./config/config.js";
/** For the web app's webhook receiver: verify `x-cal-token-signature` before trusting an event. */
export { verifySignature } from "./events/signing.js";
export { TOKEN_EVENT_TYPES, type TokenEvent, type TokenEventType } from "./events/types.js";
