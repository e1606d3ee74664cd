/** Lease bookkeeping of one refresher: extend before a long step, release after settling. */
import type { RefreshContext } from "./attempt.js";

/**
 * Extends our lease before a step that would otherwise run past it (the force-refresh after a
 * rejection). `false` means another owner took it: we must not call Cal.com for this user now.
 */
export async function extendLease(ctx: RefreshContext, userUlid: string): Promise<boolean> {
  const now = ctx.clock();
  try {
    const res = await ctx.store.acquireLease(userUlid, ctx.ownerId, new Date(now.getTime() + ctx.policy.leaseMs), now);
    if (res.kind !== "acquired") return false;
    ctx.leaseTakenAt.set(userUlid, now.getTime());
    return true;
  } catch {
    return false;
  }
}

export async function releaseLease(ctx: RefreshContext, userUlid: string): Promise<void> {
  try {
    await ctx.store.releaseLease(userUlid, ctx.ownerId);
  } catch (err) {
    // It lapses on its own after leaseMs.
    ctx.log.warn({ userUlid, err }, "lease not released");
  }
}
