/**
 * What must hold before any call to Cal.com's token endpoints, and what a call's answer means for the
 * fleet: the configuration breaker (a refused client secret stops every process, not one user), the
 * shared call budget (request paths ahead of background work), and a lease that outlives the call.
 * Nothing here changes a user's row: a closed gate is not the user's failure.
 */
import type { CalRefreshResult } from "../core/calcom-result.js";
import { failure } from "../core/failures.js";
import type { CallClass } from "../core/ports.js";
import { withTimeout } from "../core/timeout.js";
import type { RefreshTrigger } from "../core/types.js";
import { type Attempt, failed } from "./attempt.js";
import { alert } from "./effects.js";
import { extendLease, releaseLease } from "./lease.js";
import type { RefreshOutcome } from "./types.js";

/** Redis must not stall a refresh: an unanswered gate is treated as open (the lease still guards the user). */
const GATE_TIMEOUT_MS = 500;
/** Never ask a caller to come back sooner than this. */
const MIN_RETRY_AFTER_MS = 1_000;

export type Gate = { open: true; probe: boolean } | { open: false; outcome: RefreshOutcome };

/** Request paths (a user is waiting) draw on the whole budget; scheduled work stops short of it. */
export function callClassOf(trigger: RefreshTrigger): CallClass {
  return trigger === "worker" || trigger === "cli" ? "background" : "request";
}

/** Passes the gates for one token call, holding the lease for the call; releases it when refused. */
export async function passGates(a: Attempt, opts: { checkBreaker: boolean }): Promise<Gate> {
  const { ctx, token } = a;
  let probe = false;
  if (opts.checkBreaker && ctx.breaker) {
    const breaker = ctx.breaker;
    const state = await ask(a, () => breaker.state(ctx.clock()), { open: false } as const);
    if (state.open) {
      probe = await ask(a, () => breaker.claimProbe(ctx.clock()), false);
      if (!probe) {
        // The reason stays out of the result: anyone who can write Redis could put text there.
        const wait = Math.max(MIN_RETRY_AFTER_MS, state.probeAt.getTime() - ctx.clock().getTime());
        return refuse(a, failed(token, failure("callsSuspended"), wait));
      }
      ctx.log.warn({ userUlid: token.userUlid, reason: state.reason }, "token calls are suspended; probing Cal.com with this refresh");
    }
  }
  if (ctx.budget) {
    const budget = ctx.budget;
    const took = await ask(a, () => budget.take(callClassOf(a.req.trigger), ctx.clock()), { ok: true } as const);
    if (!took.ok) return refuse(a, failed(token, failure("budgetExhausted"), Math.max(MIN_RETRY_AFTER_MS, took.retryAfterMs)));
  }
  if (!(await extendLease(a, ctx.policy.callLeaseMs))) return { open: false, outcome: failed(token, failure("leaseTimeout")) };
  return { open: true, probe };
}

/**
 * After a token call: a configuration failure opens the breaker for every process (one log line and
 * one event when it opens); a probe that gets a new pair closes it.
 */
export async function afterCall(a: Attempt, result: CalRefreshResult, probe: boolean): Promise<void> {
  const { ctx } = a;
  const breaker = ctx.breaker;
  if (!breaker) return;
  if (result.kind === "config_error") {
    const how = await ask(a, () => breaker.trip(result.message, ctx.clock()), "still_open" as const);
    if (how === "opened") {
      ctx.log.error(
        { status: result.status, reason: result.message },
        "Cal.com refused our client configuration: token calls stopped fleet-wide until a probe succeeds",
      );
      await alert(ctx, "calls_suspended", async (s) => s.callsSuspended?.({ reason: result.message, now: ctx.clock() }));
    }
    return;
  }
  // Only a new pair proves our configuration works: some servers check a grant before the client.
  if (probe && result.kind === "refreshed" && (await ask(a, () => breaker.close(ctx.clock()), false))) {
    ctx.log.warn({ userUlid: a.token.userUlid }, "probe succeeded: token calls resumed fleet-wide");
    await alert(ctx, "calls_resumed", async (s) => s.callsResumed?.({ now: ctx.clock() }));
  }
}

async function refuse(a: Attempt, outcome: RefreshOutcome): Promise<Gate> {
  await releaseLease(a.ctx, a.token.userUlid, a.lease.token);
  return { open: false, outcome };
}

async function ask<T>(a: Attempt, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await withTimeout(fn(), GATE_TIMEOUT_MS, "fleet gate");
  } catch (err) {
    a.ctx.log.warn({ userUlid: a.token.userUlid, err }, "fleet gate unavailable; treating it as open");
    return fallback;
  }
}
