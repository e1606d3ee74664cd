import { ulid } from "ulid";
import type { AlertSink } from "../core/ports.js";
import { normalizeUlid } from "../core/ulid.js";
import type { Logger } from "../log/logger.js";
import type { AlertState, EventStore } from "../store/event-store.js";
import type { EventRelay } from "./relay.js";
import { TOKEN_EVENT_TYPES, type TokenEvent, type TokenEventData, type TokenEventType } from "./types.js";

export interface AlertPolicy {
  /** A failure streak older than this alerts even while the access token is still far from expiry. */
  failingAfterMs: number;
  /** A failure alerts at once when the access token expires within this window (or has expired). */
  affectedWithinMs: number;
}

export const DEFAULT_ALERT_POLICY: AlertPolicy = { failingAfterMs: 15 * 60_000, affectedWithinMs: 5 * 60_000 };

/**
 * The AlertSink behind the token.* webhooks. Each method is one atomic flip of cal_token.alert_state
 * plus its outbox row (see event-store.ts), so an alert fires once per streak however many processes
 * report the same failure, and `token.recovered` fires only when an alert was actually raised.
 */
export function createAlertSink(deps: {
  eventStore: EventStore;
  relay: Pick<EventRelay, "kick"> | null;
  logger: Logger;
  policy?: AlertPolicy;
  newId?: () => string;
}): AlertSink {
  const { eventStore, relay, logger } = deps;
  const policy = deps.policy ?? DEFAULT_ALERT_POLICY;
  const newId = deps.newId ?? (() => ulid());

  async function emit(
    userUlid: string,
    from: readonly AlertState[],
    to: AlertState,
    type: TokenEventType,
    data: TokenEventData,
    now: Date,
  ): Promise<boolean> {
    const id = newId();
    const ulidNorm = normalizeUlid(userUlid);
    // Built field by field from metadata: nothing from a token row's secret columns can reach it.
    const event: TokenEvent = { id, type, userUlid: ulidNorm, occurredAt: now.toISOString(), data };
    const flipped = await eventStore.flip(ulidNorm, from, to, { id, type, payload: event, now });
    if (!flipped) return false;
    logger.info({ userUlid: ulidNorm, eventId: id, eventType: type, alertState: to }, "token alert state changed");
    try {
      relay?.kick();
    } catch (err) {
      // The row is committed; the periodic relay will pick it up.
      logger.warn({ err, eventId: id }, "could not kick the event relay");
    }
    return true;
  }

  async function emitFleet(type: TokenEventType, data: TokenEventData, now: Date): Promise<void> {
    const id = newId();
    const event: TokenEvent = { id, type, userUlid: null, occurredAt: now.toISOString(), data };
    await eventStore.insertFleetEvent({ id, type, payload: event, now });
    logger.info({ eventId: id, eventType: type }, "fleet event recorded");
    try {
      relay?.kick();
    } catch (err) {
      logger.warn({ err, eventId: id }, "could not kick the event relay");
    }
  }

  return {
    async refreshFailing(input) {
      const { now } = input;
      const expiresInMs = input.accessTokenExpiresAt.getTime() - now.getTime();
      const failingForMs = input.firstFailureAt === null ? 0 : now.getTime() - input.firstFailureAt.getTime();
      // Transient failures with plenty of token life left are invisible to the user: don't page anyone.
      const affected = expiresInMs <= policy.affectedWithinMs || failingForMs >= policy.failingAfterMs;
      if (!affected) return;
      await emit(
        input.userUlid,
        ["NONE"],
        "FAILING",
        TOKEN_EVENT_TYPES.refreshFailing,
        {
          kind: input.kind,
          errorCode: input.code,
          accessTokenExpiresAt: input.accessTokenExpiresAt.toISOString(),
        },
        now,
      );
    },

    async reconnectRequired(input) {
      // From FAILING too: a user already alerted as failing must still hear they have to reconnect.
      await emit(
        input.userUlid,
        ["NONE", "FAILING"],
        "RECONNECT",
        TOKEN_EVENT_TYPES.reconnectRequired,
        {
          kind: input.kind,
          errorCode: input.code,
        },
        input.now,
      );
    },

    async recovered(input) {
      await emit(input.userUlid, ["FAILING", "RECONNECT"], "NONE", TOKEN_EVENT_TYPES.recovered, { kind: input.kind }, input.now);
    },

    // Fleet-wide: the breaker's own atomic open/close (src/fleet/config-breaker.ts) makes each fire once.
    callsSuspended: (input) => emitFleet(TOKEN_EVENT_TYPES.configError, { reason: input.reason }, input.now),
    callsResumed: (input) => emitFleet(TOKEN_EVENT_TYPES.configResolved, {}, input.now),
  };
}
