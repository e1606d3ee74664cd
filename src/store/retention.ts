import type { PrismaClient } from "./prisma.js";

/**
 * Retention for the append-only tables: one audit row per refresh outcome is ~24 rows per user per
 * day, so old rows must go. Deletes in bounded batches (short transactions, no long locks) through
 * the BRIN index on created_at; returns how many rows were removed. Stops at `maxBatches` so one
 * sweep tick stays short; the next tick continues.
 */
export async function pruneOldRows(
  prisma: PrismaClient,
  cutoff: Date,
  opts: { batchSize?: number; maxBatches?: number } = {},
): Promise<{ audit: number; events: number }> {
  const batch = opts.batchSize ?? 5_000;
  const maxBatches = opts.maxBatches ?? 10;
  let audit = 0;
  let events = 0;
  for (let i = 0; i < maxBatches; i++) {
    const n = await prisma.$executeRaw`
      DELETE FROM cal_token_audit WHERE id IN (
        SELECT id FROM cal_token_audit WHERE created_at < ${cutoff}::timestamptz LIMIT ${batch}::int)`;
    audit += n;
    if (n < batch) break;
  }
  for (let i = 0; i < maxBatches; i++) {
    // Only delivered (relayed) events: an event still waiting in the outbox is never dropped.
    const n = await prisma.$executeRaw`
      DELETE FROM cal_token_event WHERE id IN (
        SELECT id FROM cal_token_event WHERE relayed_at IS NOT NULL AND created_at < ${cutoff}::timestamptz LIMIT ${batch}::int)`;
    events += n;
    if (n < batch) break;
  }
  return { audit, events };
}
