import type { CalTokenKind } from "../core/types.js";
import type { PrismaClient } from "./prisma.js";

/** What the sweep needs to put a user's job back: when, and the policy's priority (kind and last use). */
export interface DueRow {
  userUlid: string;
  kind: CalTokenKind;
  nextRefreshAt: Date;
  lastUsedAt: Date | null;
}

export interface DueCursor {
  nextRefreshAt: Date;
  userUlid: string;
}

/**
 * One keyset page of ACTIVE rows due by `horizon`, in (next_refresh_at, user_ulid) order. The row
 * comparison walks the index `cal_token_due_idx (status, next_refresh_at, user_ulid)` from the
 * cursor, so a page costs O(page) whatever the table size (no OFFSET, no sort).
 */
export async function findDuePage(
  prisma: PrismaClient,
  opts: { horizon: Date; after: DueCursor | null; limit: number },
): Promise<DueRow[]> {
  const after = opts.after ?? { nextRefreshAt: new Date(0), userUlid: "" };
  return prisma.$queryRaw<DueRow[]>`
    SELECT user_ulid AS "userUlid", kind::text AS "kind", next_refresh_at AS "nextRefreshAt", last_used_at AS "lastUsedAt"
    FROM cal_token
    WHERE status = 'ACTIVE'::"CalTokenStatus"
      AND (next_refresh_at, user_ulid) > (${after.nextRefreshAt}::timestamptz, ${after.userUlid}::char(26))
      AND next_refresh_at <= ${opts.horizon}::timestamptz
    ORDER BY next_refresh_at, user_ulid
    LIMIT ${opts.limit}::int`;
}
