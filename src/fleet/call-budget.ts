/**
 * The fleet-wide budget for token calls (docs/architecture.md#invariant-8-rate-budget) in Redis: an approximate sliding window of
 * `ratePerMinute` calls, counted by every process right before it calls Cal.com's token endpoints.
 * Request paths may use the whole budget; background work stops `reserve` short of it, so a user
 * waiting on a request is served before a scheduled refresh when the budget is short.
 *
 * One hash key (fields = window numbers), so it works on Redis Cluster whatever the prefix. Time is
 * Redis's own clock (TIME inside the script), so processes with skewed clocks agree on the window.
 */
import type { RedisClient } from "../queue/connection.js";
import type { CallBudget } from "../core/ports.js";

// Sliding window from two fixed windows: used = previous × (share of it still inside the last minute) + current.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = math.floor(now / win)
local cur = tonumber(redis.call('HGET', KEYS[1], tostring(n)) or '0')
local prev = tonumber(redis.call('HGET', KEYS[1], tostring(n - 1)) or '0')
local elapsed = (now - n * win) / win
if prev * (1 - elapsed) + cur + 1 > limit then
  local wait = math.ceil((1 - elapsed) * win) + 1
  if prev > 0 and cur + 1 <= limit then
    local e2 = 1 - (limit - cur - 1) / prev
    if e2 > elapsed and e2 < 1 then wait = math.ceil((e2 - elapsed) * win) end
  end
  return -math.max(wait, 1)
end
redis.call('HINCRBY', KEYS[1], tostring(n), 1)
redis.call('HDEL', KEYS[1], tostring(n - 2))
redis.call('PEXPIRE', KEYS[1], win * 3)
return 1
`;

export interface CallBudgetOptions {
  redis: RedisClient;
  prefix: string;
  ratePerMinute: number;
  /** Calls per window that only request paths may use. Default: a fifth of the budget, at least 1. */
  reserve?: number;
  windowMs?: number;
}

export function createRedisCallBudget(opts: CallBudgetOptions): CallBudget {
  const key = `${opts.prefix}:fleet:call-budget`;
  const windowMs = opts.windowMs ?? 60_000;
  const reserve = Math.min(opts.reserve ?? Math.max(1, Math.floor(opts.ratePerMinute / 5)), opts.ratePerMinute - 1);
  return {
    async take(callClass) {
      const limit = callClass === "request" ? opts.ratePerMinute : opts.ratePerMinute - Math.max(0, reserve);
      const res = Number(await opts.redis.eval(TAKE, 1, key, windowMs, Math.max(1, limit)));
      return res > 0 ? { ok: true } : { ok: false, retryAfterMs: -res };
    },
  };
}
