export { createCalcomTokenApi, type HttpCalcomTokenApi, type CalcomTokenApiDeps } from "./token-api.js";
export { classifyResponse, rateLimitResetMs, DEFAULT_RATE_LIMIT_RESET_MS, type ResponseHeaders } from "./classify.js";
export {
  matchRejection,
  statusRule,
  REJECTION_RULES,
  STATUS_RULES,
  UNEXPECTED_STATUS,
  NOT_COMMITTED_5XX,
  type RejectionRule,
  type StatusRule,
  type TokenEndpoint,
} from "./rules.js";
export { readErrorBody, type ErrorBody, type ErrorShape } from "./error-body.js";
export { parseTokenBody, MAX_TOKEN_BYTES } from "./token-body.js";
export { ASSUMED_ACCESS_TOKEN_TTL_MS, MAX_ACCESS_TOKEN_TTL_MS } from "./expiry.js";
export { classifyRequestError } from "./request-error.js";
