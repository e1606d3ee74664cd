/**
 * cache-staleness, the parameters, one user's sample, and the rows and notes built from them. The
 * section is in cache-staleness.ts, process B in cache-staleness-child.ts.
 */
import { fmtMs, pct } from "../lib/format.js";
import { quantile, summarize } from "../lib/stats.js";
import type { BenchContext, Row } from "../lib/types.js";

/** TOKEN_CACHE_SECONDS in both processes; B polls every `pollMs`, gives up after `capMs`. */
export const STALE = { users: 50, warmup: 5, pollMs: 1, afterPolls: 20, capMs: 5_000, cacheSeconds: 30 };

export interface Sample {
  /** B's token for the user was served from memory just before A refreshed. */
  fromMemory: boolean;
  /** A's forced call succeeded with a new pair. */
  refreshed: boolean;
  /** A's ensureValidCalToken(u, true), ms. */
  refreshMs: number;
  /** A's call returned → B's ensureValidCalToken returned the new token, ms (Infinity: never within capMs). */
  staleMs: number;
  /** A's call returned → the pair-change message reached process B, ms (negative: before A's call returned). */
  messageMs: number;
  /** B's first new token is the one A got. */
  sameAsA: boolean;
  newHash: string;
  /** Calls returning the old token after B had returned the new one. */
  oldAfterNew: number;
  /** B's reads of the row until it returned the new token (one expected: the one after the invalidation). */
  reads: number;
  /** B's reads of the row during the polls after that (0 expected: the new token is cached). */
  readsAfter: number;
  polls: number;
}

const p95 = (xs: readonly number[]) => quantile(xs, 0.95);

/** `pubsubMs` and `pingMs`: the baselines, one of each per user. */
export function stalenessRows(samples: Sample[], pubsubMs: number[], pingMs: number[], finalMismatches: number): Row[] {
  const n = samples.length;
  const staleMs = samples.map((s) => s.staleMs);
  const [stale, pubsub, ping] = [summarize(staleMs), summarize(pubsubMs), summarize(pingMs)];
  const never = samples.filter((s) => !Number.isFinite(s.staleMs)).length;
  const goal = { op: "<=", target: 100 } as const;
  const how = `${n} users, one forced refresh each; B polls every ${STALE.pollMs} ms`;
  return [
    {
      metric: "Redis PING round trip p50 (baseline)",
      value: ping.p50,
      unit: "ms",
      detail: `A's side, own connection; p99 ${fmtMs(ping.p99)}; ${n} samples`,
    },
    {
      metric: "PUBLISH → subscriber in B, p50 (baseline)",
      value: pubsub.p50,
      unit: "ms",
      detail: `a bare PUBLISH from A's process to a subscriber in process B; p95 ${fmtMs(p95(pubsubMs))}, max ${fmtMs(pubsub.max)}; interleaved with the refreshes`,
    },
    {
      metric: "staleness p50",
      value: stale.p50,
      unit: "ms",
      detail: `A's ensureValidCalToken(u, true) returned → B's ensureValidCalToken returned the new token; ${how}`,
    },
    { metric: "staleness p95", value: p95(staleMs), unit: "ms", goal, detail: how },
    {
      metric: "staleness max",
      value: stale.max,
      unit: "ms",
      goal,
      detail: never > 0 ? `${never} users never saw the new token within ${STALE.capMs} ms` : how,
    },
    {
      metric: "staleness / PUBLISH → subscriber (p50s)",
      value: stale.p50 / pubsub.p50,
      unit: "×",
      detail: `p95s: ${(p95(staleMs) / p95(pubsubMs)).toFixed(1)}×; staleness p50 is ${(stale.p50 / ping.p50).toFixed(1)}× a PING`,
    },
    ...contextRows(samples, finalMismatches),
  ];
}

/** Where the time went, and the consistency check. */
function contextRows(samples: Sample[], finalMismatches: number): Row[] {
  const n = samples.length;
  const message = summarize(samples.map((s) => s.messageMs).filter(Number.isFinite));
  const afterMessage = summarize(samples.map((s) => s.staleMs - s.messageMs).filter(Number.isFinite));
  const refresh = summarize(samples.map((s) => s.refreshMs));
  const oldAfterNew = samples.reduce((sum, s) => sum + s.oldAfterNew, 0);
  const sameAsA = samples.filter((s) => s.sameAsA).length;
  return [
    {
      metric: "pair-change message in B, p50 (from A's return)",
      value: message.p50,
      unit: "ms",
      detail: `min ${fmtMs(message.min)}, max ${fmtMs(message.max)} (negative: before A's call returned); then B's next poll and read: p50 ${fmtMs(afterMessage.p50)}, max ${fmtMs(afterMessage.max)}`,
    },
    {
      metric: "A's forced refresh p50 (context)",
      value: refresh.p50,
      unit: "ms",
      detail: `p99 ${fmtMs(refresh.p99)}; the fake Cal.com in process A`,
    },
    {
      metric: "B served from memory when A refreshed",
      value: samples.filter((s) => s.fromMemory).length,
      unit: "",
      detail: `of ${n} users (a second call just before A's refresh read no row)`,
    },
    {
      metric: "B returned the old token after the new one",
      value: oldAfterNew + finalMismatches,
      unit: "",
      goal: { op: "<=", target: 0 },
      detail: `${STALE.afterPolls} polls per user after the switch (${oldAfterNew}) + one call per user at the end (${finalMismatches} not A's token); B's first new token was A's for ${sameAsA} of ${n}`,
    },
  ];
}

export function stalenessNotes(ctx: BenchContext, samples: Sample[], info: { clockRttMs: number; warmAttempts: number }): void {
  const n = samples.length;
  const mean = (xs: number[]) => (xs.reduce((x, y) => x + y, 0) / n).toFixed(2);
  const reads = samples.map((s) => s.reads);
  const after = samples.map((s) => s.readsAfter);
  ctx.note(
    `Two OS processes on the run's database and Redis, TOKEN_CACHE_SECONDS=${STALE.cacheSeconds} in both: A (this process; its own pool and Redis connections, the fake Cal.com) force-refreshes through the public \`ensureValidCalToken(u, true)\`; ` +
      `B (bench/ondemand/cache-staleness-child.ts, a stock client with its own pool, Redis connections and pair-change subscription) had the user's token in memory and polls the public \`ensureValidCalToken(u)\` every ${STALE.pollMs} ms (a timer: ≥ 1 ms between polls), never bypassing its cache. ` +
      `${STALE.warmup} warm-up users are not counted; for even users the baseline probe runs before the refresh, for odd ones after.`,
  );
  ctx.note(
    `Timestamps are process.hrtime (CLOCK_MONOTONIC, one clock for both processes; B's stamp fell inside an IPC round trip of ${fmtMs(info.clockRttMs)} at best). ` +
      `Staleness = the pair-change message reaching B (A publishes it, not awaited, when the new pair is written, so it can arrive before A's call returns) + B's next poll + B's one read of the row. ` +
      `A read that starts in the same millisecond as the invalidation is served but not cached (token-cache.ts compares whole milliseconds, \`>=\`, so a read that may have begun before the change is never kept), hence the extra read on a later poll. ` +
      `B's reads of the row per refresh: until the new token ${mean(reads)} (exactly one for ${reads.filter((r) => r === 1).length} of ${n}), during the ${STALE.afterPolls} polls after it ${mean(after)} (none for ${after.filter((r) => r === 0).length} of ${n}, ${pct(after.filter((r) => r === 0).length, n)}); the warm-up took ${info.warmAttempts} pass(es) to find B's feed live.`,
  );
}
