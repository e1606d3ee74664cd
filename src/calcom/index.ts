export { createCalcomTokenApi, type HttpCalcomTokenApi, type CalcomTokenApiDeps } from "./token-api.js";
export {
  classifyManaged,
  classifyOAuth2,
  classifyResponse,
  rateLimitResetMs,
  DEFAULT_RATE_LIMIT_RESET_MS,
  type ResponseHeaders,
  type TokenEndpoint,
} from "./classify.js";
export { classifyRequestError } from "./request-error.js";
