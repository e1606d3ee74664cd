import { ERROR_CODES } from "../core/errors.js";
import type { PrismaClient } from "./prisma.js";

const EXPIRY_ASSUMED = ERROR_CODES.expiryAssumed;
const EXPIRY_CONVERTED = ERROR_CODES.expiryConverted;

export interface TokenStats {
  byStatus: { status: string; count: number }[];
  /** ACTIVE rows whose refresh is more than `lateMs` overdue: the worker is behind or down. */
  overdue: number;
  /**
   * ACTIVE OAuth2 rows whose refresh token expires within `refreshTokenAtRiskMs` (or has expired): their
   * keep-alive refresh has not got through (docs/operations.md#refresh-tokens-at-risk). Alert above 0.
   */
  refreshTokenAtRisk: number;
  /** Refresh outcomes recorded in the audit table during the last `windowMs`, by outcome and trigger. */
  recentOutcomes: { outcome: string; trigger: string; count: number }[];
  /** Successful refreshes in the same window whose expiry had to be assumed or converted (audit codes). */
  recentExpiryNotes: { assumed: number; converted: number };
}

/**
 * Fleet-wide figures for /metrics, read from Postgres at scrape time. Every process that refreshes
 * writes audit rows, so this sees the worker dynos' outcomes too (they have no HTTP port on Heroku).
 * Each query uses an index: (status, next_refresh_at), (status, refresh_token_expires_at) and the BRIN
 * index on audit created_at.
 */
export async function readTokenStats(
  prisma: PrismaClient,
  now: Date,
  opts: { lateMs?: number; windowMs?: number; refreshTokenAtRiskMs?: number } = {},
): Promise<TokenStats> {
  const lateBefore = new Date(now.getTime() - (opts.lateMs ?? 60_000));
  const since = new Date(now.getTime() - (opts.windowMs ?? 5 * 60_000));
  const atRiskBefore = new Date(now.getTime() + (opts.refreshTokenAtRiskMs ?? 24 * 3600_000));
  const [byStatus, overdue, atRisk, recent, notes] = await Promise.all([
    prisma.$queryRaw<{ status: string; count: bigint }[]>`SELECT status::text AS status, count(*) AS count FROM cal_token GROUP BY status`,
    prisma.$queryRaw<{ count: bigint }[]>`
      SELECT count(*) AS count FROM cal_token WHERE status = 'ACTIVE'::"CalTokenStatus" AND next_refresh_at < ${lateBefore}::timestamptz`,
    // cal_token_rt_expiry_idx (status, refresh_token_expires_at): only the rows near their deadline are read.
    prisma.$queryRaw<{ count: bigint }[]>`
      SELECT count(*) AS count FROM cal_token
      WHERE status = 'ACTIVE'::"CalTokenStatus" AND refresh_token_expires_at <= ${atRiskBefore}::timestamptz
        AND kind = 'oauth2'::"CalTokenKind"`,
    prisma.$queryRaw<{ outcome: string; trigger: string; count: bigint }[]>`
      SELECT outcome::text AS outcome, trigger, count(*) AS count FROM cal_token_audit
      WHERE created_at >= ${since}::timestamptz GROUP BY outcome, trigger`,
    prisma.$queryRaw<{ code: string; count: bigint }[]>`
      SELECT error_code AS code, count(*) AS count FROM cal_token_audit
      WHERE created_at >= ${since}::timestamptz AND error_code IN (${EXPIRY_ASSUMED}, ${EXPIRY_CONVERTED}) GROUP BY error_code`,
  ]);
  const noteCount = (code: string) => Number(notes.find((n) => n.code === code)?.count ?? 0);
  return {
    byStatus: byStatus.map((r) => ({ status: r.status, count: Number(r.count) })),
    overdue: Number(overdue[0]?.count ?? 0),
    refreshTokenAtRisk: Number(atRisk[0]?.count ?? 0),
    recentOutcomes: recent.map((r) => ({ outcome: r.outcome, trigger: r.trigger, count: Number(r.count) })),
    recentExpiryNotes: { assumed: noteCount(EXPIRY_ASSUMED), converted: noteCount(EXPIRY_CONVERTED) },
  };
}
