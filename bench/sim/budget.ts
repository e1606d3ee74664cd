/**
 * Rate limits in virtual time.
 *
 * - `SlidingBudget` is the arithmetic of the Lua script in src/fleet/call-budget.ts (an approximate
 *   sliding window from two fixed windows, request paths up to the limit, background work a fifth
 *   short). The real budget runs inside Redis, so it cannot be imported as a function: this is a model
 *   of it, kept line for line with the script (if the script changes, change this).
 * - `FixedWindow` is Cal.com's per-client throttle (a call past 500 in the current minute gets 429),
 *   which the seed met directly, having no budget of its own.
 * - `JobLimiter` is BullMQ's worker limiter (a fixed window of 60 s opened by the first job: d had
 *   CAL_REFRESH_RATE_PER_MINUTE jobs, d′ has `JOBS_PER_BUDGETED_CALL` times that, src/queue/names.ts);
 *   it counts jobs, calls or not, and `queue.rateLimit(ms)` (what a refused worker job does) closes it
 *   for `ms`.
 */

export type CallClass = "request" | "background";

export class SlidingBudget {
  private n = Number.NEGATIVE_INFINITY;
  private cur = 0;
  private prev = 0;
  private readonly reserve: number;
  /** After a refusal: how long until the window has room (the script's negative return). */
  retryAfterMs = 0;

  constructor(
    private readonly ratePerMinute: number,
    private readonly windowMs = 60_000,
  ) {
    this.reserve = Math.min(Math.max(1, Math.floor(ratePerMinute / 5)), ratePerMinute - 1);
  }

  take(now: number, cls: CallClass): boolean {
    const limit = Math.max(1, cls === "request" ? this.ratePerMinute : this.ratePerMinute - Math.max(0, this.reserve));
    const win = this.windowMs;
    const n = Math.floor(now / win);
    if (n !== this.n) {
      // HGET of fields n and n−1 as the script reads them.
      this.prev = n === this.n + 1 ? this.cur : 0;
      this.cur = 0;
      this.n = n;
    }
    const elapsed = (now - n * win) / win;
    if (this.prev * (1 - elapsed) + this.cur + 1 > limit) {
      let wait = Math.ceil((1 - elapsed) * win) + 1;
      if (this.prev > 0 && this.cur + 1 <= limit) {
        const e2 = 1 - (limit - this.cur - 1) / this.prev;
        if (e2 > elapsed && e2 < 1) wait = Math.ceil((e2 - elapsed) * win);
      }
      this.retryAfterMs = Math.max(wait, 1);
      return false;
    }
    this.cur++;
    return true;
  }
}

export class FixedWindow {
  private n = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs = 60_000,
  ) {}

  take(now: number): boolean {
    const n = Math.floor(now / this.windowMs);
    if (n !== this.n) {
      this.n = n;
      this.count = 0;
    }
    if (this.count >= this.perWindow) return false;
    this.count++;
    return true;
  }
}

export class JobLimiter {
  private windowEnd = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(
    private readonly max: number,
    private readonly durationMs = 60_000,
  ) {}

  /** Takes a slot at `now`, or returns the time the limiter opens again. */
  take(now: number): number | null {
    if (now >= this.windowEnd) {
      this.windowEnd = now + this.durationMs;
      this.count = 0;
    }
    if (this.count >= this.max) return this.windowEnd;
    this.count++;
    return null;
  }

  /** `queue.rateLimit(ms)`: nothing runs for `ms`, then a fresh window. */
  pause(now: number, ms: number): void {
    this.windowEnd = now + ms;
    this.count = this.max;
  }
}
