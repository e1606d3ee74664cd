/**
 * In-memory ConfigBreaker and CallBudget for unit tests of the refresh use case: the semantics of the
 * Redis implementations (src/fleet/config-breaker.ts, src/fleet/call-budget.ts), step by step, without
 * Redis. test/integration/fleet/fleet-contract.test.ts runs one table of behaviours against both, so
 * these may only change together with that table.
 *
 * Faithful on purpose:
 * - each operation is applied atomically inside one call (no await between reading and writing), as
 *   the Lua scripts are;
 * - the breaker takes time from the caller's `now` (as the Redis one does); the budget ignores it and
 *   reads its own clock (`opts.clock`), as the Redis one reads Redis's TIME;
 * - the budget is the same approximate sliding window of two fixed windows, with the same refusal wait.
 *
 * Test hooks: `peek` (the breaker's stored fields), `takes` (every budget take and its answer).
 */
import type { BreakerState, CallBudget, CallClass, ConfigBreaker } from "../../src/core/ports.js";
import { type BreakerTiming, DEFAULT_BREAKER_TIMING } from "../../src/fleet/config-breaker.js";

/** The fields of the breaker's hash, as numbers (epoch ms) where Redis stores numbers. */
export interface BreakerFields {
  openedAt: number;
  reason: string;
  probes: number;
  probeAt: number;
  probeUntil: number;
}

export interface InMemoryConfigBreaker extends ConfigBreaker {
  /** A copy of the stored fields, or null while closed. */
  peek(): BreakerFields | null;
}

export function createInMemoryConfigBreaker(opts: { timing?: BreakerTiming } = {}): InMemoryConfigBreaker {
  const timing = opts.timing ?? DEFAULT_BREAKER_TIMING;
  let fields: BreakerFields | null = null;
  const tick = () => Promise.resolve();
  return {
    async state(): Promise<BreakerState> {
      await tick();
      if (fields === null) return { open: false };
      return { open: true, reason: fields.reason, openedAt: new Date(fields.openedAt), probeAt: new Date(fields.probeAt) };
    },
    async claimProbe(now) {
      await tick();
      const t = now.getTime();
      if (fields === null || fields.probeAt > t || fields.probeUntil > t) return false;
      fields.probeUntil = t + timing.probeLeaseMs;
      return true;
    },
    async trip(reason, now) {
      await tick();
      const t = now.getTime();
      const stored = reason.slice(0, 300);
      if (fields === null) {
        fields = { openedAt: t, reason: stored, probes: 0, probeAt: t + timing.probeDelayMs, probeUntil: 0 };
        return "opened";
      }
      const probes = fields.probes + 1;
      const delay = Math.min(timing.probeDelayMs * 2 ** probes, timing.maxProbeDelayMs);
      fields = { ...fields, probes, probeAt: t + delay, probeUntil: 0, reason: stored };
      return "still_open";
    },
    async close() {
      await tick();
      const wasOpen = fields !== null;
      fields = null;
      return wasOpen;
    },
    peek: () => (fields === null ? null : { ...fields }),
  };
}

export interface InMemoryCallBudgetOptions {
  ratePerMinute: number;
  /** Calls per window only request paths may use. Default: a fifth of the budget, at least 1. */
  reserve?: number;
  windowMs?: number;
  /** The budget's own clock (Redis's TIME in the real one). Default: the wall clock. */
  clock?: () => Date;
}

export interface InMemoryCallBudget extends CallBudget {
  /** Every take so far, in order: the class asked for and whether it was granted. */
  takes(): { callClass: CallClass; ok: boolean }[];
}

export function createInMemoryCallBudget(opts: InMemoryCallBudgetOptions): InMemoryCallBudget {
  const windowMs = opts.windowMs ?? 60_000;
  const clock = opts.clock ?? (() => new Date());
  const reserve = Math.min(opts.reserve ?? Math.max(1, Math.floor(opts.ratePerMinute / 5)), opts.ratePerMinute - 1);
  const counts = new Map<number, number>();
  const log: { callClass: CallClass; ok: boolean }[] = [];

  /** The TAKE script: > 0 granted, otherwise minus the wait in ms. */
  function take(limit: number): number {
    const now = clock().getTime();
    const n = Math.floor(now / windowMs);
    const cur = counts.get(n) ?? 0;
    const prev = counts.get(n - 1) ?? 0;
    const elapsed = (now - n * windowMs) / windowMs;
    if (prev * (1 - elapsed) + cur + 1 > limit) {
      let wait = Math.ceil((1 - elapsed) * windowMs) + 1;
      if (prev > 0 && cur + 1 <= limit) {
        const e2 = 1 - (limit - cur - 1) / prev;
        if (e2 > elapsed && e2 < 1) wait = Math.ceil((e2 - elapsed) * windowMs);
      }
      return -Math.max(wait, 1);
    }
    counts.set(n, cur + 1);
    counts.delete(n - 2);
    return 1;
  }

  return {
    async take(callClass) {
      await Promise.resolve();
      const limit = callClass === "request" ? opts.ratePerMinute : opts.ratePerMinute - Math.max(0, reserve);
      const res = take(Math.max(1, limit));
      log.push({ callClass, ok: res > 0 });
      return res > 0 ? { ok: true } : { ok: false, retryAfterMs: -res };
    },
    takes: () => log.map((t) => ({ ...t })),
  };
}
