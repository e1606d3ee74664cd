/**
 * The classification table for answers that are not 2xx, as data
 * (docs/calcom-api.md#how-the-client-classifies-answers).
 *
 * The one rule that matters: only proof of a dead grant is `rejected`, because a rejection ends in
 * "reconnect required" for the user. Proof is exactly the answers Cal.com's token logic gives for a
 * dead grant, on the endpoint that gives them. Any other 400/401/403/404 (a route-level 404 from a
 * wrong CAL_API_URL, a proxy page, an empty body, refused client credentials, a validation error)
 * happened before the token logic and says nothing about the user: `config_error`.
 */
import type { ErrorBody, ErrorShape } from "./error-body.js";

/** The token calls; the same answer means different things on each. `oauth2.code` is the code exchange. */
export type TokenEndpoint = "managed.refresh" | "managed.forceRefresh" | "oauth2.token" | "oauth2.code";

export interface RejectionRule {
  /** Stable name (tests, docs). */
  id: string;
  endpoint: TokenEndpoint;
  status: number;
  /** Error body shapes that count: Cal.com's envelope, an RFC 6749 body (flat or wrapped). */
  shapes: readonly ErrorShape[];
  /** Exact error code, when the rule keys on it. */
  code?: string;
  /** What the error message must say, when the rule keys on it. */
  message?: RegExp;
  /** Where the answer is documented. */
  doc: string;
}

export const REJECTION_RULES: readonly RejectionRule[] = [
  {
    // "Invalid refresh token"; older builds said "Invalid managed user refresh token".
    id: "managed.invalid_refresh_token",
    endpoint: "managed.refresh",
    status: 400,
    shapes: ["calcom"],
    message: /refresh token/i,
    doc: "docs/calcom-api.md#managed-user-refresh",
  },
  {
    // Prisma P2025 from the delete of a token another refresh has just rotated: a lost race.
    id: "managed.record_race",
    endpoint: "managed.refresh",
    status: 404,
    shapes: ["calcom"],
    code: "NOT_FOUND",
    doc: "docs/calcom-api.md#races",
  },
  {
    id: "force.not_in_client",
    endpoint: "managed.forceRefresh",
    status: 404,
    shapes: ["calcom"],
    message: /is not part of this OAuth client/i,
    doc: "docs/calcom-api.md#managed-user-force-refresh",
  },
  {
    id: "oauth2.invalid_grant",
    endpoint: "oauth2.token",
    status: 400,
    // Flat RFC 6749, or the same code inside an older Cal.com wrapper.
    shapes: ["rfc6749", "calcom"],
    code: "invalid_grant",
    doc: "docs/calcom-api.md#oauth2-token-endpoint",
  },
  {
    // The code is unknown, expired or used, or its redirect URI or PKCE challenge does not match: the
    // user has to start the connection again. Not a grant that died: there was none yet.
    id: "oauth2.code_rejected",
    endpoint: "oauth2.code",
    status: 400,
    shapes: ["rfc6749", "calcom"],
    code: "invalid_grant",
    doc: "docs/calcom-api.md#oauth2-authorization-code",
  },
];

export type StatusOutcome =
  | { kind: "rate_limited" }
  | { kind: "transient"; reason: "server_error" | "timeout" }
  | { kind: "config_error" }
  | { kind: "malformed" };

export interface StatusRule {
  id: string;
  /** Inclusive range. */
  from: number;
  to: number;
  outcome: StatusOutcome;
}

/** Everything that is not 2xx and matched no rejection rule, first match wins. */
export const STATUS_RULES: readonly StatusRule[] = [
  { id: "rate_limited", from: 429, to: 429, outcome: { kind: "rate_limited" } },
  { id: "server_error", from: 500, to: 599, outcome: { kind: "transient", reason: "server_error" } },
  // The server gave up waiting for our request, so it never ran the handler.
  { id: "request_timeout", from: 408, to: 408, outcome: { kind: "transient", reason: "timeout" } },
  { id: "not_a_rejection", from: 400, to: 400, outcome: { kind: "config_error" } },
  { id: "client_refused", from: 401, to: 401, outcome: { kind: "config_error" } },
  { id: "client_forbidden", from: 403, to: 403, outcome: { kind: "config_error" } },
  { id: "not_found", from: 404, to: 404, outcome: { kind: "config_error" } },
];

/**
 * 1xx/3xx (redirects are off), 405, 409, 413, 415, 422, 498, …: refused before the token
 * transaction (guards, pipes and routing run first; a 409 from the transaction rolls it back), so
 * the stored token is still the live one. Not retryable as it is either: an operator should look.
 */
export const UNEXPECTED_STATUS: StatusRule = { id: "unexpected_status", from: 0, to: 999, outcome: { kind: "malformed" } };

/**
 * 500/501/503/505 and Cloudflare's 521–523 mean the handler failed (its transaction rolled back) or
 * was never reached. Every other 5xx (502, 504, 520, 524, …) may come from a proxy that gave up
 * while Cal.com was still committing: wrongly assuming a rotation costs one extra call, wrongly
 * assuming none can lose the grant.
 */
export const NOT_COMMITTED_5XX: readonly number[] = [500, 501, 503, 505, 521, 522, 523];

export function matchRejection(endpoint: TokenEndpoint, status: number, err: ErrorBody): RejectionRule | undefined {
  return REJECTION_RULES.find(
    (r) =>
      r.endpoint === endpoint &&
      r.status === status &&
      r.shapes.includes(err.shape) &&
      (r.code === undefined || r.code === err.code) &&
      (r.message === undefined || (err.message !== undefined && r.message.test(err.message))),
  );
}

export function statusRule(status: number): StatusRule {
  return STATUS_RULES.find((r) => status >= r.from && status <= r.to) ?? UNEXPECTED_STATUS;
}
