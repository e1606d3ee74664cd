/**
 * Writing a pair Cal.com just issued: persist first, compare-and-swap on the version we read
 * (docs/architecture.md#invariant-2-persist-first). A failed write is retried while our lease covers
 * us; if the database stays down the pair becomes a held pair, flushed later, never dropped.
 */
import { computeNextRefreshAt } from "../core/policy.js";
import type { TokenPair } from "../core/types.js";
import { type Attempt, settledByOther } from "./attempt.js";
import { alert, emitOutcome } from "./effects.js";
import type { RefreshOutcome } from "./types.js";

export type SuccessOutcome = "REFRESHED" | "FORCE_REFRESHED";

/** Past this little lease left, another process may act on the old row: stop retrying and hold the pair. */
const MIN_LEASE_LEFT_FOR_RETRY_MS = 5_000;
const MAX_RETRY_DELAY_MS = 5_000;

export async function persistPair(a: Attempt, pair: TokenPair, outcome: SuccessOutcome): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  const nextRefreshAt = computeNextRefreshAt(pair.accessTokenExpiresAt, ctx.clock(), ctx.policy.leadMs, ctx.policy.jitterMs, ctx.rand);
  const leaseDeadline = (ctx.leaseTakenAt.get(token.userUlid) ?? a.started.getTime()) + ctx.policy.leaseMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await writeOnce(a, pair, outcome, nextRefreshAt);
    } catch (err) {
      const leaseLeftMs = leaseDeadline - ctx.clock().getTime();
      if (attempt + 1 < ctx.policy.persistAttempts && leaseLeftMs > MIN_LEASE_LEFT_FOR_RETRY_MS) {
        ctx.log.warn({ userUlid: token.userUlid, attempt, err }, "rotated pair not written yet; retrying");
        await ctx.sleep(Math.min(ctx.policy.persistRetryBaseMs * 2 ** attempt, MAX_RETRY_DELAY_MS));
        continue;
      }
      await ctx.heldPairs.hold({
        userUlid: token.userUlid,
        expectedVersion: token.version,
        owner: ctx.ownerId,
        pair,
        nextRefreshAt,
        trigger: a.req.trigger,
        heldSince: a.started,
      });
      ctx.log.error({ userUlid: token.userUlid, err }, "database unavailable: holding the rotated pair until it can be written");
      // The caller can use the new access token now; the write follows when the database is back.
      return { ok: true, how: successHow(outcome), token: { ...token, ...pair, nextRefreshAt, version: token.version } };
    }
  }
}

/** One compare-and-swap, with its audit row in the same statement. Throws when the database fails. */
async function writeOnce(a: Attempt, pair: TokenPair, outcome: SuccessOutcome, nextRefreshAt: Date): Promise<RefreshOutcome> {
  const { ctx, token, req } = a;
  const res = await ctx.store.saveRotated({
    userUlid: token.userUlid,
    expectedVersion: token.version,
    owner: ctx.ownerId,
    pair,
    nextRefreshAt,
    now: ctx.clock(),
    audit: { outcome, trigger: req.trigger, durationMs: ctx.clock().getTime() - a.started.getTime() },
  });
  if (!res.ok) {
    // Someone else wrote a newer pair (e.g. the user reconnected): theirs wins; never overwrite.
    ctx.log.warn({ userUlid: token.userUlid }, "rotated pair lost the compare-and-swap; using the stored one");
    return settledByOther(ctx, token.userUlid);
  }
  const how = successHow(outcome);
  ctx.log.info({ userUlid: token.userUlid, version: res.meta.version, how, trigger: req.trigger }, "token refreshed");
  emitOutcome(ctx, { userUlid: token.userUlid, trigger: req.trigger, outcome }, a.started);
  // Only a user with a failure streak can have an open alert; skip the extra write otherwise.
  if (token.failureCount > 0 || token.rotationUncertain || token.firstFailureAt !== null) {
    await alert(ctx, "recovered", (s) => s.recovered({ userUlid: token.userUlid, kind: token.kind, now: ctx.clock() }));
  }
  return { ok: true, how, token: { ...res.meta, accessToken: pair.accessToken, refreshToken: pair.refreshToken } };
}

function successHow(outcome: SuccessOutcome): "refreshed" | "force_refreshed" {
  return outcome === "REFRESHED" ? "refreshed" : "force_refreshed";
}
