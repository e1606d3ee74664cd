import type { Failure } from "../core/failures.js";
import type { AuditOutcome, TokenRecord } from "../core/ports.js";
import type { RefreshTrigger } from "../core/types.js";

export interface RefreshRequest {
  userUlid: string;
  trigger: RefreshTrigger;
  /** Refresh even if the token looks fresh (still single-flight: a refresh that lands while we wait satisfies it). */
  force?: boolean;
  /** The access token Cal.com just rejected. If the stored one already differs, no refresh is needed. */
  staleAccessToken?: string;
  /** Row version the caller based its decision on; any newer version satisfies the request. */
  observedVersion?: number;
  /** The row as the caller just read it (saves the refresher a read). */
  knownToken?: TokenRecord;
}

/** A failed refresh as the refresh use case reports it: a catalogue failure (src/core/failures.ts). */
export type RefreshFailure = Failure;

/**
 * What Cal.com answered when its answer is the failure: the HTTP status (null: no answer, e.g. a
 * timeout or a dropped connection) and its error code when the body carried one. Never a body or a
 * token. For operators (the refresh job's failure message in Bull Board); not part of the public
 * `TokenRefreshResult`.
 */
export interface CalcomAnswer {
  status: number | null;
  code?: string;
}

export type RefreshOutcome =
  | {
      ok: true;
      /** `refreshed` / `force_refreshed`: this call rotated; `by_other`: another caller did; `not_needed`. */
      how: "refreshed" | "force_refreshed" | "by_other" | "not_needed";
      token: TokenRecord;
    }
  | {
      ok: false;
      error: RefreshFailure;
      /** The stored token as last seen (may still be valid), or null if there is none. */
      token: TokenRecord | null;
      /** For rate limiting: when Cal.com's window resets. */
      retryAfterMs?: number;
      /** Set when Cal.com's answer (or its absence) caused the failure. */
      calcom?: CalcomAnswer;
      /** When the row now says this user is due again (written by the failure bookkeeping). */
      retryAt?: Date;
    };

/** Emitted once per attempt outcome; metrics and events hang off this (no secrets inside). */
export interface OutcomeEvent {
  userUlid: string;
  outcome: AuditOutcome;
  trigger: RefreshTrigger;
  errorCode: string | null;
  durationMs: number;
}
