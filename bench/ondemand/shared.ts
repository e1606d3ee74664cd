/**
 * Benchmarks of the on-demand module (src/ondemand): the hot path of `ensureValidCalToken` on a fresh
 * token (hot-path.ts), and an inline refresh (inline-refresh.ts). Every figure is relative to a
 * baseline measured in the same run, interleaved with the measured calls.
 *
 * This file holds what the two sections share.
 */

/** One pool size for every client and the baseline Prisma client (the module's default). */
export const POOL_SIZE = 10;

/** Round r runs the arms rotated by r, reversed on odd rounds, so no arm always follows the same one. */
export function orderFor<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  const rotated = [...items.slice(k), ...items.slice(0, k)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}
