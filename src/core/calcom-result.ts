import type { TokenPair } from "./types.js";

/** The forms Cal.com has used, or might use, for an access-token expiry (docs/calcom-api.md#response-bodies-and-expiry-formats). */
export type ExpiryForm = "epoch_ms" | "epoch_seconds" | "numeric_string" | "iso8601" | "expires_in";

/**
 * Where `pair.accessTokenExpiresAt` came from. Holds field names and forms only, never a value, so it
 * can go to logs and metrics as it is.
 *
 * `assumed`: Cal.com's expiry was missing, unreadable or absurd (in the past, or more than a day
 * ahead), so the client stored a short conservative one instead. The pair is still Cal.com's live
 * pair; the refresher should keep it, log a warning and count it.
 */
export type ExpiryNote =
  | { source: ExpiryForm; field: string }
  | { source: "assumed"; assumed: "missing" | "unparsable" | "absurd"; field: string | null };

/**
 * Classified outcome of one call to a Cal.com token endpoint. The client never throws for an HTTP
 * outcome; it returns one of these, so the refresh use case can decide with a switch.
 *
 * `mayHaveRotated` marks the ambiguous cases: the request reached Cal.com, but we did not get a
 * readable answer (timeout after sending, dropped connection, unreadable 2xx, gateway 5xx). Cal.com
 * may have rotated the refresh token in that case, so the stored one is probably dead.
 */
export type CalRefreshResult =
  /**
   * A 2xx carrying both tokens. `expiry` is always set by the HTTP client; test doubles may leave it
   * out, which reads as an exact expiry.
   */
  | {
      kind: "refreshed";
      pair: TokenPair;
      expiry?: ExpiryNote;
      /**
       * When the request that issued the pair was sent: an OAuth2 refresh token expires 30 days from it
       * (src/core/grant-policy.ts). Set by the HTTP client; test doubles may leave it out, and the
       * refresher then uses the attempt's start, which is earlier.
       */
      sentAt?: Date;
    }
  /**
   * Proof that the grant (or the user) is dead, and nothing else: exactly the answers in the client's
   * rejection table (docs/calcom-api.md#how-the-client-classifies-answers).
   */
  | { kind: "rejected"; status: number; code: string; message: string }
  /** 429. `resetMs` comes from X-RateLimit-Reset-Default (relative seconds); Cal.com sends no Retry-After. */
  | { kind: "rate_limited"; status: 429; resetMs: number }
  | {
      kind: "transient";
      reason: "timeout" | "network" | "server_error";
      status: number | null;
      mayHaveRotated: boolean;
      message: string;
      /** Cal.com's error code when its answer carried one (e.g. `ServiceUnavailableException`). */
      code?: string;
    }
  /** A response we cannot use (bad JSON, wrong shape, HTML error page with a 2xx, an odd status, …). */
  | { kind: "malformed"; status: number; message: string; mayHaveRotated: boolean; code?: string }
  /**
   * 400/401/403/404 that is not a documented rejection: our client credentials, our request or our
   * CAL_API_URL is wrong (a route-level 404, a proxy page, a validation error). Says nothing about the
   * user; retrying will not help until an operator acts.
   */
  | { kind: "config_error"; status: number; message: string };

export type CalRefreshResultKind = CalRefreshResult["kind"];
