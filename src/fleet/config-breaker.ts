/**
 * The fleet-wide configuration breaker in Redis (see ConfigBreaker in src/core/ports.ts). One hash
 * key holds when it opened, why, when the next probe may run and who is probing; every change is one
 * Lua script, so two processes can never both claim the probe or both "open" it.
 */
import type { RedisClient } from "../queue/connection.js";
import type { BreakerState, ConfigBreaker } from "../core/ports.js";

export interface BreakerTiming {
  /** First probe this long after opening; doubles per failed probe up to `maxProbeDelayMs`. */
  probeDelayMs: number;
  maxProbeDelayMs: number;
  /** How long a claimed probe keeps others out (a dead prober frees it after this). */
  probeLeaseMs: number;
}

export const DEFAULT_BREAKER_TIMING: BreakerTiming = { probeDelayMs: 15_000, maxProbeDelayMs: 10 * 60_000, probeLeaseMs: 30_000 };

const TRIP = `
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'openedAt', now, 'reason', ARGV[2], 'probes', 0, 'probeAt', now + tonumber(ARGV[3]), 'probeUntil', 0)
  return 1
end
local probes = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0') + 1
local delay = math.min(tonumber(ARGV[3]) * math.pow(2, probes), tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'probes', probes, 'probeAt', now + delay, 'probeUntil', 0, 'reason', ARGV[2])
return 0
`;

const CLAIM = `
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'probeAt', 'probeUntil')
if v[1] == false then return 0 end
if tonumber(v[1]) > now or tonumber(v[2] or '0') > now then return 0 end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[2]))
return 1
`;

/** The breaker's one Redis key (a hash), under the queue prefix. */
export function breakerKey(prefix: string): string {
  return `${prefix}:fleet:config-breaker`;
}

export function createRedisConfigBreaker(opts: { redis: RedisClient; prefix: string; timing?: BreakerTiming }): ConfigBreaker {
  const key = breakerKey(opts.prefix);
  const timing = opts.timing ?? DEFAULT_BREAKER_TIMING;
  return {
    async state(): Promise<BreakerState> {
      const h = await opts.redis.hgetall(key);
      if (h.openedAt === undefined) return { open: false };
      return { open: true, reason: h.reason ?? "", openedAt: new Date(Number(h.openedAt)), probeAt: new Date(Number(h.probeAt)) };
    },
    async claimProbe(now) {
      return Number(await opts.redis.eval(CLAIM, 1, key, now.getTime(), timing.probeLeaseMs)) === 1;
    },
    async trip(reason, now) {
      const res = await opts.redis.eval(TRIP, 1, key, now.getTime(), reason.slice(0, 300), timing.probeDelayMs, timing.maxProbeDelayMs);
      return Number(res) === 1 ? "opened" : "still_open";
    },
    async close() {
      return (await opts.redis.del(key)) > 0;
    },
  };
}
