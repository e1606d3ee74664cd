/** Lease bookkeeping of one refresh attempt: extend before a Cal.com call, release after settling. */
import type { Attempt, RefreshContext } from "./attempt.js";

/**
 * Extends the attempt's lease for `forMs` (judged by the database's clock). Called right before each
 * Cal.com call with the call lease (HTTP timeout + margin), so the lease outlives the call and no other
 * process can start one meanwhile. `false` means another attempt took it: we must not call Cal.com.
 */
export async function extendLease(a: Attempt, forMs: number): Promise<boolean> {
  const { ctx, token } = a;
  const startedAt = ctx.clock().getTime();
  try {
    const res = await ctx.store.acquireLease(token.userUlid, a.lease.token, forMs);
    if (res.kind !== "acquired") return false;
    // Counted from before the statement: our estimate ends no later than the database's lease.
    a.lease.endsAt = startedAt + forMs;
    return true;
  } catch {
    return false;
  }
}

export async function releaseLease(ctx: RefreshContext, userUlid: string, leaseToken: string): Promise<void> {
  try {
    await ctx.store.releaseLease(userUlid, leaseToken);
  } catch (err) {
    // It lapses on its own after at most the call lease.
    ctx.log.warn({ userUlid, err }, "lease not released");
  }
}

/** Milliseconds of our lease left by this process's clock. */
export function leaseLeftMs(a: Attempt): number {
  return a.lease.endsAt - a.ctx.clock().getTime();
}
