import type { TokenPair } from "./types.js";

/**
 * Classified outcome of one call to a Cal.com token endpoint. The client never throws for an HTTP
 * outcome; it returns one of these, so the refresh use case can decide with a switch.
 *
 * `mayHaveRotated` marks the ambiguous cases: the request reached Cal.com, but we did not get a
 * readable answer (timeout after sending, dropped connection, unreadable 2xx, gateway 5xx). Cal.com
 * may have rotated the refresh token in that case, so the stored one is probably dead.
 */
export type CalRefreshResult =
  | { kind: "refreshed"; pair: TokenPair }
  /** 400/404 on refresh, or 404 on force-refresh: the grant (or the user) is not accepted. */
  | { kind: "rejected"; status: number; code: string; message: string }
  /** 429. `resetMs` comes from X-RateLimit-Reset-Default (relative seconds); Cal.com sends no Retry-After. */
  | { kind: "rate_limited"; status: 429; resetMs: number }
  | {
      kind: "transient";
      reason: "timeout" | "network" | "server_error";
      status: number | null;
      mayHaveRotated: boolean;
      message: string;
    }
  /** A response we cannot use (bad JSON, wrong shape, HTML error page with a 2xx, …). */
  | { kind: "malformed"; status: number; message: string; mayHaveRotated: boolean }
  /** 401/403 about our own client credentials: retrying will not help, an operator must act. */
  | { kind: "config_error"; status: number; message: string };

export type CalRefreshResultKind = CalRefreshResult["kind"];
