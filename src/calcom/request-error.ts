/**
 * Pure classification of a request that produced no HTTP status (got threw). The key question is
 * `mayHaveRotated`: could Cal.com have received the request and committed a rotation?
 * Only the error's `name`, `code`, `timings` and response status are read; the error object itself
 * (which carries the request options, i.e. the refresh token) never leaves this function.
 */
import type { CalRefreshResult } from "../core/calcom-result.js";

/** Failures before any byte reached Cal.com: DNS, refused/unreachable, TLS handshake. */
const NEVER_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  timings?: { connect?: unknown } | undefined;
  response?: { statusCode?: unknown } | undefined;
}

export function classifyRequestError(err: unknown): CalRefreshResult {
  const e: ErrorLike = typeof err === "object" && err !== null ? (err as ErrorLike) : {};
  const code = typeof e.code === "string" && /^[A-Z0-9_]{2,64}$/.test(e.code) ? e.code : undefined;
  const status = typeof e.response?.statusCode === "number" ? e.response.statusCode : null;
  // got records when the TCP connection was established (a reused keep-alive socket counts as
  // connected). No connection means no byte of the request reached Cal.com, whatever the error.
  const neverConnected = e.timings !== undefined && e.timings.connect === undefined;
  const neverSent = status === null && ((code !== undefined && NEVER_SENT_CODES.has(code)) || neverConnected);

  if (e.name === "TimeoutError" || code === "ETIMEDOUT") {
    // Once sent, a timeout is the classic "Cal.com rotated but we never saw the answer".
    return { kind: "transient", reason: "timeout", status, mayHaveRotated: !neverSent, message: "request to Cal.com timed out" };
  }
  // ECONNRESET / socket hang up / a broken body read after the headers: the request was (or may have
  // been) processed. Unknown errors land here too, conservatively: wrongly assuming a rotation costs
  // one extra call, wrongly assuming none can lose the grant.
  return {
    kind: "transient",
    reason: "network",
    status,
    mayHaveRotated: !neverSent,
    message: `network error talking to Cal.com${code ? ` (${code})` : ""}${status !== null ? ` after status ${status}` : ""}`,
  };
}
