export { createCalcomClient, type CalcomClient, type CalcomClientDeps } from "./client.js";
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
