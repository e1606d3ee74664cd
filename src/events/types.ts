import type { CalTokenKind } from "../core/types.js";

/** The webhook event types the web app subscribes to (docs/architecture.md#invariant-7-every-outcome-is-recorded). */
export const TOKEN_EVENT_TYPES = {
  refreshFailing: "token.refresh_failing",
  reconnectRequired: "token.reconnect_required",
  recovered: "token.recovered",
  /** Fleet-wide (userUlid null): Cal.com refused our client configuration; token calls stopped. */
  configError: "token.config_error",
  /** Fleet-wide (userUlid null): a probe succeeded; token calls resumed. */
  configResolved: "token.config_resolved",
} as const;
export type TokenEventType = (typeof TOKEN_EVENT_TYPES)[keyof typeof TOKEN_EVENT_TYPES];

/**
 * The body of a webhook, and the payload stored in the outbox row. Metadata only: no field can hold a
 * token (docs/architecture.md#invariant-6-no-secret-leaves-the-row), which is why `data` is a closed
 * shape rather than a free-form bag.
 */
export interface TokenEvent {
  /** ULID; also the idempotency key and the BullMQ job id. */
  id: string;
  type: TokenEventType;
  /** The user, or null for the fleet-wide `token.config_error` / `token.config_resolved`. */
  userUlid: string | null;
  /** ISO 8601, when the status flipped (not when the webhook was sent). */
  occurredAt: string;
  data: TokenEventData;
}

export interface TokenEventData {
  /** The user's token kind (user events only). */
  kind?: CalTokenKind;
  /** Why token calls stopped (`token.config_error` only): Cal.com's status, code and message, never a token. */
  reason?: string;
  /** Classified error code (e.g. `calcom.transient`), never a raw response body. */
  errorCode?: string;
  /** ISO 8601; lets the web app tell how soon the user will notice. */
  accessTokenExpiresAt?: string;
}

/** Job payload on the events queue: the id only; the event itself is read from Postgres. */
export interface DeliverEventJobData {
  eventId: string;
}

const FLEET_EVENT_TYPES: readonly string[] = [TOKEN_EVENT_TYPES.configError, TOKEN_EVENT_TYPES.configResolved];

/** Narrows an outbox payload read back from Postgres (jsonb) to a TokenEvent. */
export function isTokenEvent(value: unknown): value is TokenEvent {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const data = v.data as Record<string, unknown> | null | undefined;
  if (typeof v.id !== "string" || typeof v.occurredAt !== "string" || typeof data !== "object" || data === null) return false;
  if (!Object.values(TOKEN_EVENT_TYPES).includes(v.type as TokenEventType)) return false;
  // Fleet events name no user; user events name one and its token kind.
  if (FLEET_EVENT_TYPES.includes(v.type as string)) return v.userUlid === null;
  return typeof v.userUlid === "string" && (data.kind === "managed" || data.kind === "oauth2");
}
