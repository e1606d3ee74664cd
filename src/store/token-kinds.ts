/**
 * How many live rows of each kind are stored, for the boot check that every stored kind has its Cal.com
 * client configured (docs/oauth2.md#the-boot-check). One aggregate query; RECONNECT_REQUIRED rows are
 * not counted: nothing refreshes them until the user connects again.
 */
import type { CalTokenKind } from "../core/types.js";
import type { PrismaClient } from "./prisma.js";

export type KindCounts = Record<CalTokenKind, number>;

export async function countActiveByKind(prisma: PrismaClient): Promise<KindCounts> {
  const rows = await prisma.$queryRaw<{ kind: string; count: bigint }[]>`
    SELECT kind::text AS kind, count(*) AS count FROM cal_token WHERE status = 'ACTIVE'::"CalTokenStatus" GROUP BY kind`;
  const count = (kind: CalTokenKind) => Number(rows.find((r) => r.kind === kind)?.count ?? 0);
  return { managed: count("managed"), oauth2: count("oauth2") };
}
