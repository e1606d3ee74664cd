import type { CalTokenKind } from "../core/types.js";

/** The webhook event types the web app subscribes to (docs/architecture.md#invariant-7-every-outcome-is-recorded). */
export const TOKEN_EVENT_TYPES = {
  refreshFailing: "token.refresh_failing",
  reconnectRequired: "token.reconnect_required",
  recovered: "token.recovered",
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
  userUlid: string;
  /** ISO 8601, when the status flipped (not when the webhook was sent). */
  occurredAt: string;
  data: TokenEventData;
}

export interface TokenEventData {
  kind: CalTokenKind;
  /** Classified error code (e.g. `calcom.transient`), never a raw response body. */
  errorCode?: string;
  /** ISO 8601; lets the web app tell how soon the user will notice. */
  accessTokenExpiresAt?: string;
}

/** Job payload on the events queue: the id only; the event itself is read from Postgres. */
export interface DeliverEventJobData {
  eventId: string;
}

/** Narrows an outbox payload read back from Postgres (jsonb) to a TokenEvent. */
export function isTokenEvent(value: unknown): value is TokenEvent {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const data = v.data as Record<string, unknown> | null | undefined;
  return (
    typeof v.id === "string" &&
    typeof v.userUlid === "string" &&
    typeof v.occurredAt === "string" &&
    Object.values(TOKEN_EVENT_TYPES).includes(v.type as TokenEventType) &&
    typeof data === "object" &&
    data !== null &&
    (data.kind === "managed" || data.kind === "oauth2")
  );
}
