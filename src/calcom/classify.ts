/**
 * Pure classification of one Cal.com token-endpoint outcome into a `CalRefreshResult`. No I/O, no
 * clock (callers pass `nowMs`), so every row of the table is unit-testable without HTTP.
 *
 * Messages are built only from the status, Cal.com's error code and Cal.com's own message (which never
 * echoes tokens), never from request data.
 */
import type { CalRefreshResult } from "../core/calcom-result.js";
import { type ErrorBody, parseJson, readErrorBody } from "./error-body.js";
import { matchRejection, NOT_COMMITTED_5XX, statusRule, type TokenEndpoint } from "./rules.js";
import { parseTokenBody } from "./token-body.js";

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;
export type { TokenEndpoint };

/** Used when a 429 carries no usable reset header: Cal.com's default window and block are both 60 s. */
export const DEFAULT_RATE_LIMIT_RESET_MS = 60_000;
/** A garbage-but-numeric header must not park a token for days. */
const MAX_RATE_LIMIT_RESET_MS = 3_600_000;
const MAX_MESSAGE_CHARS = 300;

/**
 * `nowMs` is when the request was sent: relative expiries count from it, absolute ones are checked
 * against it.
 */
export function classifyResponse(
  endpoint: TokenEndpoint,
  status: number,
  headers: ResponseHeaders,
  bodyText: string,
  nowMs: number,
): CalRefreshResult {
  const body = parseJson(bodyText);

  if (status >= 200 && status < 300) {
    // The server answered 2xx, so it committed the rotation: an unusable body means the old refresh
    // token is most likely dead already.
    if (body === undefined) return malformed(status, `Cal.com ${status}: body is not JSON`, true);
    const parsed = parseTokenBody(body, nowMs);
    if (!parsed.ok) return malformed(status, `Cal.com ${status}: ${parsed.reason}`, true);
    return { kind: "refreshed", pair: parsed.pair, expiry: parsed.expiry, sentAt: new Date(nowMs) };
  }

  const err = readErrorBody(body);
  const text = describe(status, err);
  const rejection = matchRejection(endpoint, status, err);
  if (rejection) return { kind: "rejected", status, code: err.code ?? `HTTP_${status}`, message: text };

  const { outcome } = statusRule(status);
  // Cal.com's own error code (never a body or a token) rides along for Bull Board and the job's log.
  const code = err.code !== undefined ? { code: err.code } : {};
  switch (outcome.kind) {
    case "rate_limited":
      return { kind: "rate_limited", status: 429, resetMs: rateLimitResetMs(headers, nowMs) };
    case "transient": {
      const mayHaveRotated = outcome.reason === "server_error" && !NOT_COMMITTED_5XX.includes(status);
      return { kind: "transient", reason: outcome.reason, status, mayHaveRotated, message: text, ...code };
    }
    case "config_error":
      return { kind: "config_error", status, message: `${text} (${configHint(status, err)})` };
    case "malformed":
      return { kind: "malformed", status, message: `unexpected status: ${text}`, mayHaveRotated: false, ...code };
  }
}

/** One clause on what to check, so the operator's first log line points the right way. */
function configHint(status: number, err: ErrorBody): string {
  if (err.shape === "none") return "not an answer from Cal.com's API: check CAL_API_URL and any proxy";
  if (status === 404 && err.code === "NotFoundException" && err.message?.startsWith("Cannot ")) {
    return "route not found: check CAL_API_URL (the base URL, without /v2)";
  }
  if (status === 401 || status === 403) return "client credentials refused: check the client id and secret";
  return "not a documented rejection of the grant: check the configuration";
}

/**
 * X-RateLimit-Reset-Default is RELATIVE seconds (docs/calcom-api.md#rate-limits), not a Unix timestamp; a value that looks like
 * epoch seconds is converted defensively. Named limits (X-RateLimit-Reset-Short, …) block only when all
 * are exhausted, so without a Default header the longest one wins.
 */
export function rateLimitResetMs(headers: ResponseHeaders, nowMs: number): number {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const byName = lower.has("x-ratelimit-reset-default")
    ? [lower.get("x-ratelimit-reset-default")]
    : [...lower].filter(([k]) => k.startsWith("x-ratelimit-reset-")).map(([, v]) => v);
  const seconds = byName.map(toSeconds).filter((s): s is number => s !== null);
  if (seconds.length === 0) return DEFAULT_RATE_LIMIT_RESET_MS;
  const max = Math.max(...seconds);
  let ms = max > 1e9 ? max * 1000 - nowMs : max * 1000;
  if (!Number.isFinite(ms) || ms <= 0) return DEFAULT_RATE_LIMIT_RESET_MS;
  // Wait at least a second: "reset in 0 s" would otherwise be an immediate retry into the same wall.
  ms = Math.max(ms, 1000);
  return Math.min(Math.ceil(ms), MAX_RATE_LIMIT_RESET_MS);
}

function toSeconds(v: string | string[] | undefined): number | null {
  const raw = Array.isArray(v) ? v[0] : v;
  if (raw === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

function describe(status: number, err: ErrorBody): string {
  const parts = [`Cal.com ${status}`, err.code, err.message].filter((p): p is string => !!p);
  const text = parts.join(": ");
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}

function malformed(status: number, message: string, mayHaveRotated: boolean): CalRefreshResult {
  return { kind: "malformed", status, message, mayHaveRotated };
}
