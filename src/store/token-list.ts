/**
 * The query behind `cal-tokens list`: stored rows without secrets, in ULID order, one keyset page at
 * a time. The encrypted columns are never selected, so no envelope can reach the output.
 */
import type { CalTokenKind, CalTokenStatus } from "../core/types.js";
import type { PrismaClient } from "./prisma.js";

export interface TokenListFilter {
  /** Only rows in this status. */
  status?: CalTokenStatus | undefined;
  /** Start after this (upper-case) ULID: the previous page's `next`. */
  after?: string | undefined;
  /** At most this many rows. */
  limit: number;
}

/** What `list` shows of a row: metadata only. */
export interface TokenListRow {
  userUlid: string;
  kind: CalTokenKind;
  status: CalTokenStatus;
  calUserId: number | null;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  nextRefreshAt: Date;
  failureCount: number;
  lastFailureCode: string | null;
}

export interface TokenListPage {
  rows: TokenListRow[];
  /** The ULID to pass as `after` for the next page; null on the last page. */
  next: string | null;
}

/** The selected columns (the fields of TokenListRow); the encrypted ones are never read. */
const LIST_SELECT = {
  userUlid: true,
  kind: true,
  status: true,
  calUserId: true,
  accessTokenExpiresAt: true,
  refreshTokenExpiresAt: true,
  nextRefreshAt: true,
  failureCount: true,
  lastFailureCode: true,
} as const satisfies Record<keyof TokenListRow, true>;

export async function findTokenListPage(prisma: PrismaClient, filter: TokenListFilter): Promise<TokenListPage> {
  // One extra row tells whether there is a next page.
  const found: TokenListRow[] = await prisma.calToken.findMany({
    where: { ...(filter.status ? { status: filter.status } : {}), ...(filter.after ? { userUlid: { gt: filter.after } } : {}) },
    orderBy: { userUlid: "asc" },
    take: filter.limit + 1,
    select: LIST_SELECT,
  });
  const rows = found.slice(0, filter.limit);
  return { rows, next: found.length > filter.limit ? (rows.at(-1)?.userUlid ?? null) : null };
}
