/**
 * The statements behind `cal-tokens rotate-key` (see src/cli/commands/rotate-key.ts for the
 * reasoning): find and count the rows with an envelope that is not v2 under the active key (another
 * key id, or the v1 format under any key), and write a row's re-encrypted envelopes back.
 *
 * `prefix` is TokenCipher.currentPrefix, "v2.<active key id>." (see token-cipher.ts). It selects rows
 * only; every envelope is authenticated when it is decrypted. left() rather than LIKE: key ids may
 * contain "_", a LIKE wildcard.
 */
import type { PrismaClient } from "./prisma.js";

/** A row with at least one envelope not v2 under the active key; `leased` = a refresh holds it now. */
export interface RowToReencrypt {
  userUlid: string;
  version: number;
  accessTokenEnc: string;
  refreshTokenEnc: string;
  leased: boolean;
}

/** One keyset page (by user_ulid, after `after`) of the rows with an envelope not starting with `prefix`. */
export function findRowsToReencrypt(
  prisma: PrismaClient,
  opts: { prefix: string; after: string; limit: number; now: Date },
): Promise<RowToReencrypt[]> {
  const n = opts.prefix.length;
  return prisma.$queryRaw<RowToReencrypt[]>`
    SELECT user_ulid AS "userUlid", version, access_token_enc AS "accessTokenEnc", refresh_token_enc AS "refreshTokenEnc",
           (lease_owner IS NOT NULL AND lease_until IS NOT NULL AND lease_until >= ${opts.now}::timestamptz) AS "leased"
    FROM cal_token
    WHERE user_ulid > ${opts.after}::char(26)
      AND (left(access_token_enc, ${n}::int) <> ${opts.prefix} OR left(refresh_token_enc, ${n}::int) <> ${opts.prefix})
    ORDER BY user_ulid
    LIMIT ${opts.limit}::int`;
}

/**
 * Writes both re-encrypted envelopes as one compare-and-swap on the row as read (version and both
 * old envelopes) while no lease is held; false when the row changed or got leased since it was read.
 */
export async function writeReencryptedEnvelopes(
  prisma: PrismaClient,
  opts: { row: RowToReencrypt; accessEnc: string; refreshEnc: string; now: Date },
): Promise<boolean> {
  const { row } = opts;
  const count = await prisma.$executeRaw`
    UPDATE cal_token SET access_token_enc = ${opts.accessEnc}, refresh_token_enc = ${opts.refreshEnc}
    WHERE user_ulid = ${row.userUlid} AND version = ${row.version}::int
      AND access_token_enc = ${row.accessTokenEnc} AND refresh_token_enc = ${row.refreshTokenEnc}
      AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < ${opts.now}::timestamptz)`;
  return count === 1;
}

/** How many rows still have an envelope not starting with `prefix` (not v2 under the active key). */
export async function countRowsToReencrypt(prisma: PrismaClient, prefix: string): Promise<number> {
  const n = prefix.length;
  const rows = await prisma.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM cal_token
    WHERE left(access_token_enc, ${n}::int) <> ${prefix} OR left(refresh_token_enc, ${n}::int) <> ${prefix}`;
  return rows[0]?.count ?? 0;
}
