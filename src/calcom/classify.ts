/**
 * Pure classification of one Cal.com token-endpoint outcome into a `CalRefreshResult`. No I/O, no
 * clock (callers pass `nowMs`), so every row of the table is unit-testable without HTTP.
 *
 * Messages are built only from the status, Cal.com's error code and Cal.com's own message (which never
 * echoes tokens), never from request data.
 */
import type { CalRefreshResult } from "../core/calcom-result.js";
import { parseManagedPair, parseOAuth2Pair } from "./schemas.js";

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;
export type TokenEndpoint = "managed" | "oauth2";

/** Used when a 429 carries no usable reset header: Cal.com's default window and block are both 60 s. */
export const DEFAULT_RATE_LIMIT_RESET_MS = 60_000;
/** A garbage-but-numeric header must not park a token for days. */
const MAX_RATE_LIMIT_RESET_MS = 3_600_000;
const MAX_MESSAGE_CHARS = 300;

export function classifyManaged(status: number, headers: ResponseHeaders, bodyText: string): CalRefreshResult {
  return classifyResponse("managed", status, headers, bodyText, 0);
}

/** `nowMs` turns the relative `expires_in` into an absolute expiry. */
export function classifyOAuth2(status: number, headers: ResponseHeaders, bodyText: string, nowMs: number): CalRefreshResult {
  return classifyResponse("oauth2", status, headers, bodyText, nowMs);
}

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
    const parsed = endpoint === "managed" ? parseManagedPair(body) : parseOAuth2Pair(body, nowMs);
    return parsed.ok ? { kind: "refreshed", pair: parsed.pair } : malformed(status, `Cal.com ${status}: ${parsed.reason}`, true);
  }

  if (status === 429) return { kind: "rate_limited", status: 429, resetMs: rateLimitResetMs(headers, nowMs) };

  const err = errorFields(body);
  const text = describe(status, err);

  if (status === 400 || status === 404) {
    // RFC 6749 §5.2 allows invalid_client with 400: that is about OUR credentials, and calling it
    // `rejected` would mark every user's grant dead because of one bad deploy.
    if (endpoint === "oauth2" && err.code !== undefined && err.code !== "invalid_grant") {
      // Only invalid_grant is about the user's refresh token; invalid_client, unauthorized_client,
      // invalid_request, unsupported_grant_type… are about our client or our request, and calling
      // them `rejected` would send every OAuth2 user to "reconnect required" after one bad deploy.
      return { kind: "config_error", status, message: text };
    }
    // Cal.com always answers 400/404 with a JSON error. A bare 400/404 (HTML, empty) comes from a wrong
    // CAL_API_URL or a proxy: treating it as a dead grant would send every user to force-refresh and
    // then to "reconnect required" after one bad deploy.
    if (err.code === undefined && body === undefined) {
      return { kind: "config_error", status, message: `${text} without a Cal.com error body (check CAL_API_URL)` };
    }
    return { kind: "rejected", status, code: err.code ?? `HTTP_${status}`, message: text };
  }

  if (status === 401 || status === 403) {
    // Only a grant error names the user's token; every other 401/403 here is about our client id/secret.
    if (endpoint === "oauth2" && err.code === "invalid_grant") {
      return { kind: "rejected", status, code: err.code, message: text };
    }
    return { kind: "config_error", status, message: text };
  }

  if (status >= 500 && status < 600) {
    return { kind: "transient", reason: "server_error", status, mayHaveRotated: gatewayMayHaveCommitted(status), message: text };
  }

  // 408: the server gave up waiting for our request, so it never ran the handler.
  if (status === 408) return { kind: "transient", reason: "timeout", status, mayHaveRotated: false, message: text };

  // Everything else (1xx/3xx with redirects off, 405, 409, 413, 415, 422, 498, …) is a request Cal.com
  // refused before its token transaction (guards, pipes and routing run first; a 409 from the
  // transaction rolls it back), so the stored token is still the live one. It is not retryable
  // as-is either, hence `malformed` rather than `transient`: an operator should look.
  return malformed(status, `unexpected status: ${text}`, false);
}

/**
 * 502/504 (and Cloudflare 520/524) come from a proxy that may have given up while Cal.com was still
 * committing. 500/501/503/505 and 521–523 mean the handler failed (its transaction rolled back) or was
 * never reached. Unknown 5xx count as "may have rotated": wrongly assuming a rotation costs one extra
 * refresh attempt, wrongly assuming none loses the grant.
 */
function gatewayMayHaveCommitted(status: number): boolean {
  return ![500, 501, 503, 505, 521, 522, 523].includes(status);
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

function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Cal.com envelope `{error:{code,message}}` or RFC 6749 `{error, error_description}`; anything else → none. */
function errorFields(body: unknown): { code?: string; message?: string } {
  if (typeof body !== "object" || body === null) return {};
  const { error, error_description: desc, message: topMessage } = body as Record<string, unknown>;
  if (typeof error === "string") {
    return { code: error, ...(typeof desc === "string" ? { message: desc } : {}) };
  }
  if (typeof error === "object" && error !== null) {
    const { code, message } = error as Record<string, unknown>;
    return { ...(typeof code === "string" ? { code } : {}), ...(typeof message === "string" ? { message } : {}) };
  }
  // Legacy web endpoints answer `{"message":"Unauthorized"}` (docs/calcom-api.md#error-shapes).
  return typeof topMessage === "string" ? { message: topMessage } : {};
}

function describe(status: number, err: { code?: string; message?: string }): string {
  const parts = [`Cal.com ${status}`, err.code, err.message].filter((p): p is string => !!p);
  const text = parts.join(": ");
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text;
}

function malformed(status: number, message: string, mayHaveRotated: boolean): CalRefreshResult {
  return { kind: "malformed", status, message, mayHaveRotated };
}
