/** The statements behind `cal-tokens rotate-key` (see commands/rotate-key.ts for the reasoning). */
import type { PrismaClient } from "../store/prisma.js";

export interface StaleRow {
  userUlid: string;
  version: number;
  accessTokenEnc: string;
  refreshTokenEnc: string;
  leased: boolean;
}

/**
 * One keyset page (by user_ulid) of rows with an envelope not starting with `prefix` ("v1.<active>.").
 * left() rather than LIKE: key ids may contain "_", a LIKE wildcard.
 */
export function findStalePage(
  prisma: PrismaClient,
  opts: { prefix: string; after: string; limit: number; now: Date },
): Promise<StaleRow[]> {
  const n = opts.prefix.length;
  return prisma.$queryRaw<StaleRow[]>`
    SELECT user_ulid AS "userUlid", version, access_token_enc AS "accessTokenEnc", refresh_token_enc AS "refreshTokenEnc",
           (lease_owner IS NOT NULL AND lease_until IS NOT NULL AND lease_until >= ${opts.now}::timestamptz) AS "leased"
    FROM cal_token
    WHERE user_ulid > ${opts.after}::char(26)
      AND (left(access_token_enc, ${n}::int) <> ${opts.prefix} OR left(refresh_token_enc, ${n}::int) <> ${opts.prefix})
    ORDER BY user_ulid
    LIMIT ${opts.limit}::int`;
}

/** Compare-and-swap of both envelopes; false when the row changed or got leased since it was read. */
export async function swapEnvelopes(
  prisma: PrismaClient,
  opts: { row: StaleRow; accessEnc: string; refreshEnc: string; now: Date },
): Promise<boolean> {
  const { row } = opts;
  const count = await prisma.$executeRaw`
    UPDATE cal_token SET access_token_enc = ${opts.accessEnc}, refresh_token_enc = ${opts.refreshEnc}
    WHERE user_ulid = ${row.userUlid} AND version = ${row.version}::int
      AND access_token_enc = ${row.accessTokenEnc} AND refresh_token_enc = ${row.refreshTokenEnc}
      AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < ${opts.now}::timestamptz)`;
  return count === 1;
}

export async function countStale(prisma: PrismaClient, prefix: string): Promise<number> {
  const n = prefix.length;
  const rows = await prisma.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM cal_token
    WHERE left(access_token_enc, ${n}::int) <> ${prefix} OR left(refresh_token_enc, ${n}::int) <> ${prefix}`;
  return rows[0]?.count ?? 0;
}
