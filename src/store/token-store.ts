import type { AuditEntry, LeaseResult, TokenMeta, TokenRecord, TokenStore } from "../core/ports.js";
import { AppError, ERROR_CODES } from "../core/errors.js";
import { normalizeUlid } from "../core/ulid.js";
import type { PrismaClient } from "./prisma.js";
import {
  encryptPair,
  META_COLUMNS,
  META_SELECT,
  RECORD_COLUMNS,
  RECORD_SELECT,
  toMeta,
  toRecord,
  type MetaRow,
  type RecordRow,
} from "./rows.js";
import type { TokenCipher } from "./token-cipher.js";

/**
 * Prisma/Postgres implementation of TokenStore (invariants 1, 2 and 6 in docs/architecture.md#invariants).
 *
 * Every coordinating write is ONE statement whose WHERE clause is the guard (lease free, version
 * matches), so correctness never depends on a read-then-write or a transaction. Data timestamps come
 * from the caller (`now`), so injected clocks work and the store agrees with the refresh policy about
 * what "expired" means; leases alone use the database's clock, because they coordinate processes
 * whose clocks may disagree.
 *
 * Timestamps are bound as Date parameters (the pg adapter sends them as zone-less UTC text) and read
 * back through the same adapter, which is the convention Prisma's own queries use; mixing in SQL
 * now() or ISO strings would skew by the offset if a session ever ran in a non-UTC time zone.
 *
 * ULIDs are normalised to upper case here as well: the column is case-sensitive CHAR(26) and the
 * cipher binds the upper-case form, so a lower-case caller would otherwise miss its own row.
 */
export function createTokenStore(deps: { prisma: PrismaClient; cipher: TokenCipher }): TokenStore {
  const { prisma, cipher } = deps;

  async function getMeta(userUlid: string): Promise<TokenMeta | null> {
    const row = await prisma.calToken.findUnique({ where: { userUlid: normalizeUlid(userUlid) }, select: META_SELECT });
    return row === null ? null : toMeta(row);
  }

  return {
    async get(userUlid): Promise<TokenRecord | null> {
      const row = await prisma.calToken.findUnique({ where: { userUlid: normalizeUlid(userUlid) }, select: RECORD_SELECT });
      return row === null ? null : toRecord(row, cipher);
    },

    getMeta,

    async save(input) {
      const ulid = normalizeUlid(input.userUlid);
      const { pair, now } = input;
      const { accessEnc, refreshEnc } = encryptPair(cipher, ulid, pair);
      // Upsert in one statement: no read-modify-write race between two connect flows.
      const rows = await prisma.$queryRaw<MetaRow[]>`
        INSERT INTO cal_token (user_ulid, kind, cal_user_id, access_token_enc, refresh_token_enc,
          access_token_expires_at, refresh_token_expires_at, status, version, lease_owner, lease_until,
          rotation_uncertain, failure_count, first_failure_at, last_failure_at, last_failure_code,
          last_refreshed_at, next_refresh_at, created_at, updated_at)
        VALUES (${ulid}, ${input.kind}::"CalTokenKind", ${input.calUserId}::int, ${accessEnc}, ${refreshEnc},
          ${pair.accessTokenExpiresAt}::timestamptz, ${pair.refreshTokenExpiresAt}::timestamptz,
          'ACTIVE'::"CalTokenStatus", 1, NULL, NULL, false, 0, NULL, NULL, NULL,
          ${now}::timestamptz, ${input.nextRefreshAt}::timestamptz, ${now}::timestamptz, ${now}::timestamptz)
        ON CONFLICT (user_ulid) DO UPDATE SET
          kind = EXCLUDED.kind, cal_user_id = EXCLUDED.cal_user_id,
          access_token_enc = EXCLUDED.access_token_enc, refresh_token_enc = EXCLUDED.refresh_token_enc,
          access_token_expires_at = EXCLUDED.access_token_expires_at,
          refresh_token_expires_at = EXCLUDED.refresh_token_expires_at,
          status = EXCLUDED.status, version = cal_token.version + 1,
          lease_owner = NULL, lease_until = NULL, rotation_uncertain = false, refresh_token_rejected = false,
          failure_count = 0, first_failure_at = NULL, last_failure_at = NULL, last_failure_code = NULL,
          last_refreshed_at = EXCLUDED.last_refreshed_at, next_refresh_at = EXCLUDED.next_refresh_at,
          updated_at = EXCLUDED.updated_at
        WHERE ${input.ifAbsent !== true}::boolean
        RETURNING ${META_COLUMNS}`;
      if (input.ifAbsent && rows.length === 0) return null;
      return toMeta(single(rows, "save"));
    },

    async acquireLease(userUlid, owner, forMs): Promise<LeaseResult> {
      // NaN or Infinity would reach SQL as NULL: a lease_until of NULL that protects nothing.
      if (!Number.isFinite(forMs) || forMs < 0) throw new TypeError("lease length must be a finite, non-negative number of ms");
      const ulid = normalizeUlid(userUlid);
      // The database's clock decides, never the caller's: every process compares against one clock.
      // Re-entrant for the same lease token (extends it); lease_until IS NULL covers a half-cleared lease.
      const rows = await prisma.$queryRaw<RecordRow[]>`
        UPDATE cal_token SET lease_owner = ${owner},
          lease_until = clock_timestamp() + make_interval(secs => ${forMs}::float8 / 1000)
        WHERE user_ulid = ${ulid}
          AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < clock_timestamp() OR lease_owner = ${owner})
        RETURNING ${RECORD_COLUMNS}`;
      const row = rows[0];
      if (row === undefined) {
        const meta = await getMeta(ulid);
        return meta === null ? { kind: "missing" } : { kind: "held", meta };
      }
      try {
        return { kind: "acquired", token: toRecord(row, cipher) };
      } catch (err) {
        // The caller gets no lease object to release, so hand the lease back rather than make every
        // other process wait for it to lapse on a row nobody can refresh.
        await releaseLease(ulid, owner).catch(() => undefined);
        throw err;
      }
    },

    releaseLease: (userUlid, owner) => releaseLease(normalizeUlid(userUlid), owner),

    async saveRotated(input) {
      const { pair, now, owner } = input;
      const ulid = normalizeUlid(input.userUlid);
      const { accessEnc, refreshEnc } = encryptPair(cipher, ulid, pair);
      // The pair is stored exactly as issued: a null refresh expiry stays null (no COALESCE with old).
      const audit = input.audit ?? null;
      // The audit row rides in the same statement (a data-modifying CTE): one round trip, one commit,
      // and it exists exactly when the swap happened.
      const rows = await prisma.$queryRaw<MetaRow[]>`
        WITH updated AS (
        UPDATE cal_token SET
          access_token_enc = ${accessEnc}, refresh_token_enc = ${refreshEnc},
          access_token_expires_at = ${pair.accessTokenExpiresAt}::timestamptz,
          refresh_token_expires_at = ${pair.refreshTokenExpiresAt}::timestamptz,
          version = version + 1, status = 'ACTIVE'::"CalTokenStatus", rotation_uncertain = false, refresh_token_rejected = false,
          failure_count = 0, first_failure_at = NULL, last_failure_at = NULL, last_failure_code = NULL,
          last_refreshed_at = ${now}::timestamptz, next_refresh_at = ${input.nextRefreshAt}::timestamptz,
          lease_owner = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_owner END,
          lease_until = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_until END,
          updated_at = ${now}::timestamptz
        WHERE user_ulid = ${ulid} AND version = ${input.expectedVersion}::int
        RETURNING *),
        audited AS (
          INSERT INTO cal_token_audit (user_ulid, outcome, trigger, error_code, version, duration_ms, created_at)
          SELECT user_ulid, ${audit?.outcome ?? null}::"CalTokenOutcome", ${audit?.trigger ?? ""}, ${audit?.errorCode ?? null}::text,
                 version, ${audit?.durationMs ?? null}::int, ${now}::timestamptz
          FROM updated WHERE ${audit !== null}::boolean)
        SELECT ${META_COLUMNS} FROM updated`;
      const row = rows[0];
      return row === undefined ? { ok: false } : { ok: true, meta: toMeta(row) };
    },

    async recordFailure(input) {
      const { now, owner } = input;
      // Damped counting (docs/architecture.md#invariant-4-transient-failures-back-off): the count is the number of
      // failure windows the user has been failing for since the first failure of this streak, so a
      // burst of retries is one failure and a streak of steady retries still climbs once per window.
      // Success clears the streak.
      const count = await prisma.$executeRaw`
        UPDATE cal_token SET
          failure_count = CASE WHEN first_failure_at IS NULL THEN 1
                               ELSE GREATEST(failure_count, 1 + floor(extract(epoch FROM (${now}::timestamptz - first_failure_at)) * 1000
                                                                      / ${input.failureWindowMs}::float8)::int) END,
          first_failure_at = COALESCE(first_failure_at, ${now}::timestamptz),
          last_failure_at = ${now}::timestamptz, last_failure_code = ${input.code},
          rotation_uncertain = rotation_uncertain OR ${input.rotationUncertain}::boolean,
          refresh_token_rejected = refresh_token_rejected OR ${input.refreshTokenRejected === true}::boolean,
          next_refresh_at = ${input.nextRefreshAt}::timestamptz,
          lease_owner = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_owner END,
          lease_until = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_until END,
          updated_at = ${now}::timestamptz
        WHERE user_ulid = ${normalizeUlid(input.userUlid)} AND version = ${input.expectedVersion}::int`;
      return count > 0;
    },

    async reschedule(input) {
      const count = await prisma.$executeRaw`
        UPDATE cal_token SET next_refresh_at = ${input.nextRefreshAt}::timestamptz
        WHERE user_ulid = ${normalizeUlid(input.userUlid)} AND version = ${input.expectedVersion}::int
          AND status = 'ACTIVE'::"CalTokenStatus" AND last_failure_at IS NULL
          AND (last_used_at IS NULL OR last_used_at < ${input.idleSince}::timestamptz)`;
      return count > 0;
    },

    async markRefreshTokenRejected(input) {
      const count = await prisma.$executeRaw`
        UPDATE cal_token SET refresh_token_rejected = true
        WHERE user_ulid = ${normalizeUlid(input.userUlid)} AND version = ${input.expectedVersion}::int`;
      return count > 0;
    },

    async markReconnectRequired(input) {
      const { now, owner } = input;
      const count = await prisma.$executeRaw`
        UPDATE cal_token SET
          status = 'RECONNECT_REQUIRED'::"CalTokenStatus",
          last_failure_code = ${input.code}, last_failure_at = ${now}::timestamptz,
          first_failure_at = COALESCE(first_failure_at, ${now}::timestamptz),
          lease_owner = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_owner END,
          lease_until = CASE WHEN lease_owner = ${owner} THEN NULL ELSE lease_until END,
          updated_at = ${now}::timestamptz
        WHERE user_ulid = ${normalizeUlid(input.userUlid)} AND version = ${input.expectedVersion}::int`;
      return count > 0;
    },

    async touchLastUsed(userUlid, now) {
      // Request paths call this on every use; the throttle turns most calls into a no-op (no row
      // write, no WAL) and updated_at is left alone because nothing about the pair changed.
      const cutoff = new Date(now.getTime() - 60_000);
      await prisma.$executeRaw`
        UPDATE cal_token SET last_used_at = ${now}::timestamptz
        WHERE user_ulid = ${normalizeUlid(userUlid)} AND (last_used_at IS NULL OR last_used_at < ${cutoff}::timestamptz)`;
    },

    async insertAudit(entry: AuditEntry) {
      await prisma.calTokenAudit.create({
        data: {
          userUlid: normalizeUlid(entry.userUlid),
          outcome: entry.outcome,
          trigger: entry.trigger,
          errorCode: entry.errorCode ?? null,
          version: entry.version ?? null,
          durationMs: entry.durationMs ?? null,
        },
        select: { id: true },
      });
    },
  };

  async function releaseLease(ulid: string, owner: string): Promise<void> {
    // Lease bookkeeping is coordination, not data: updated_at is not touched.
    await prisma.$executeRaw`
      UPDATE cal_token SET lease_owner = NULL, lease_until = NULL
      WHERE user_ulid = ${ulid} AND lease_owner = ${owner}`;
  }
}

function single<T>(rows: T[], op: string): T {
  const row = rows[0];
  // An upsert always returns its row; reaching this means the statement itself is wrong.
  if (row === undefined) throw new AppError(ERROR_CODES.internal, `token store: ${op} returned no row`);
  return row;
}
