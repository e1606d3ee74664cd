/**
 * Fleet-wide state an operator wants on /metrics, read from Redis: whether token calls are suspended
 * by the configuration breaker, how many held pairs wait for the database, how many records were
 * quarantined. All reads are O(1) (EXISTS, ZCARD, ZCOUNT over an index).
 */
import type { RedisClient } from "../queue/connection.js";
import { countQuarantinedHeldPairs } from "../store/held-pair-store.js";
import { heldPairKeys } from "../store/held-pair-keys.js";
import { breakerKey } from "./config-breaker.js";

export interface FleetState {
  callsSuspended: boolean;
  heldPairsWaiting: number;
  heldPairsQuarantined: number;
}

export async function readFleetState(redis: RedisClient, prefix: string, now: Date): Promise<FleetState> {
  const [open, waiting, quarantined] = await Promise.all([
    redis.exists(breakerKey(prefix)),
    redis.zcard(heldPairKeys(prefix).index),
    countQuarantinedHeldPairs(redis, prefix, now),
  ]);
  return { callsSuspended: open > 0, heldPairsWaiting: waiting, heldPairsQuarantined: quarantined };
}
