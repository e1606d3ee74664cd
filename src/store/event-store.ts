import { normalizeUlid } from "../core/ulid.js";
import type { PrismaClient } from "./prisma.js";

/** Mirrors the CalTokenAlertState enum: which alert (if any) is currently raised for a user. */
export type AlertState = "NONE" | "FAILING" | "RECONNECT";

/** One outbox row. `payload` is the webhook body (a TokenEvent); it never holds a secret. */
export interface OutboxEvent {
  id: string;
  /** Null for fleet-wide events. */
  userUlid: string | null;
  type: string;
  payload: unknown;
  createdAt: Date;
  relayedAt: Date | null;
}

export interface NewOutboxEvent {
  id: string;
  type: string;
  payload: unknown;
  now: Date;
}

export interface EventStore {
  /**
   * Moves the user's alert state from one of `from` to `to` and writes the outbox event, as ONE
   * statement. `false` = the state was not in `from` (already flipped, or no such user): no event.
   */
  flip(userUlid: string, from: readonly AlertState[], to: AlertState, event: NewOutboxEvent): Promise<boolean>;
  /** A fleet-wide event (no user): written as is; the caller decides it happens once (the breaker's Lua does). */
  insertFleetEvent(event: NewOutboxEvent): Promise<void>;
  get(id: string): Promise<OutboxEvent | null>;
  /** Oldest first, so events reach the queue roughly in the order they happened. */
  unrelayed(limit: number): Promise<OutboxEvent[]>;
  /** Returns how many rows were marked (rows already relayed by another process are left alone). */
  markRelayed(ids: readonly string[], now: Date): Promise<number>;
  alertState(userUlid: string): Promise<AlertState | null>;
}

/**
 * Transactional outbox for the token.* webhooks (docs/architecture.md#invariant-7-every-outcome-is-recorded).
 *
 * The flip and its event are written by a single `WITH … UPDATE … RETURNING` + `INSERT … SELECT`
 * statement: Postgres runs a statement atomically, so there is no window in which a status flipped
 * without its event (or an event exists for a flip that was rolled back), and no transaction to
 * manage. Concurrent flips serialise on the row lock; under READ COMMITTED the losers re-check
 * `alert_state = ANY(from)` against the winner's committed row, match nothing and insert nothing.
 *
 * As in token-store.ts, time comes from the caller (never SQL now()) and Dates are cast ::timestamptz.
 */
export function createEventStore(deps: { prisma: PrismaClient }): EventStore {
  const { prisma } = deps;

  return {
    async flip(userUlid, from, to, event) {
      // The enum array is bound as text[] (a plain JS array) and cast, so any subset of states works.
      const rows = await prisma.$queryRaw<{ id: string }[]>`
        WITH flipped AS (
          UPDATE cal_token SET alert_state = ${to}::"CalTokenAlertState"
          WHERE user_ulid = ${normalizeUlid(userUlid)}
            AND alert_state = ANY(${[...from]}::text[]::"CalTokenAlertState"[])
          RETURNING user_ulid)
        INSERT INTO cal_token_event (id, user_ulid, type, payload, created_at)
        SELECT ${event.id}, user_ulid, ${event.type}, ${JSON.stringify(event.payload)}::jsonb, ${event.now}::timestamptz
        FROM flipped
        RETURNING id`;
      return rows.length > 0;
    },

    async insertFleetEvent(event) {
      await prisma.calTokenEvent.create({
        data: { id: event.id, userUlid: null, type: event.type, payload: event.payload as object, createdAt: event.now },
        select: { id: true },
      });
    },

    async get(id) {
      return prisma.calTokenEvent.findUnique({ where: { id } });
    },

    async unrelayed(limit) {
      // Served by cal_token_event_relay_idx (relayed_at, created_at): NULLs first in a b-tree range scan.
      return prisma.calTokenEvent.findMany({
        where: { relayedAt: null },
        orderBy: [{ createdAt: "asc" }, { id: "asc" }],
        take: limit,
      });
    },

    async markRelayed(ids, now) {
      if (ids.length === 0) return 0;
      const res = await prisma.calTokenEvent.updateMany({
        where: { id: { in: [...ids] }, relayedAt: null },
        data: { relayedAt: now },
      });
      return res.count;
    },

    async alertState(userUlid) {
      const row = await prisma.calToken.findUnique({
        where: { userUlid: normalizeUlid(userUlid) },
        select: { alertState: true },
      });
      return row?.alertState ?? null;
    },
  };
}
