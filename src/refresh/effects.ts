/**
 * The best-effort side effects of a refresh attempt: the outcome event (metrics), the audit row and
 * the alert flips (webhook events). None of them may ever cost a user their token, so each failure
 * is logged and swallowed here.
 */
import type { AlertSink, AuditOutcome } from "../core/ports.js";
import type { RefreshContext } from "./attempt.js";
import type { OutcomeEvent } from "./types.js";

export interface OutcomeRecord {
  userUlid: string;
  trigger: OutcomeEvent["trigger"];
  outcome: AuditOutcome;
  errorCode?: string;
  version?: number;
}

/** Emits the outcome event and returns the attempt's duration. */
export function emitOutcome(ctx: RefreshContext, e: OutcomeRecord, started: Date): number {
  const durationMs = ctx.clock().getTime() - started.getTime();
  try {
    ctx.onOutcome?.({ userUlid: e.userUlid, outcome: e.outcome, trigger: e.trigger, errorCode: e.errorCode ?? null, durationMs });
  } catch (err) {
    // A metrics hook must never turn a saved pair into a "failed write" or a failure into a throw.
    ctx.log.warn({ userUlid: e.userUlid, outcome: e.outcome, err }, "outcome hook threw");
  }
  return durationMs;
}

/** Outcome event plus its audit row (successful swaps write their audit row in the same statement instead). */
export async function audit(ctx: RefreshContext, e: OutcomeRecord, started: Date): Promise<void> {
  const durationMs = emitOutcome(ctx, e, started);
  try {
    await ctx.store.insertAudit({ ...e, errorCode: e.errorCode ?? null, version: e.version ?? null, durationMs });
  } catch (err) {
    ctx.log.warn({ userUlid: e.userUlid, outcome: e.outcome, err }, "audit row not written");
  }
}

/** Tells caches the user's pair changed; a failing hook never changes an outcome. */
export function pairChanged(ctx: RefreshContext, userUlid: string): void {
  try {
    ctx.onPairChanged?.(userUlid);
  } catch (err) {
    ctx.log.warn({ userUlid, err }, "pair-change hook threw");
  }
}

export async function alert(ctx: RefreshContext, what: string, fn: (sink: AlertSink) => Promise<void>): Promise<void> {
  if (!ctx.alerts) return;
  try {
    await fn(ctx.alerts);
  } catch (err) {
    ctx.log.warn({ err, alert: what }, "alert not recorded");
  }
}
