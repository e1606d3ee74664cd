/**
 * Redis keys and scripts for held-pair records (src/store/held-pair-store.ts).
 *
 *   <prefix>:recovery:<ULID>                      the record: one envelope, expires after 7 days
 *   <prefix>:recovery-index                       sorted set, member ULID, score = last put (epoch ms)
 *   <prefix>:recovery-quarantine:<ULID>:<ms>      a record that failed to authenticate or parse (30 days)
 *   <prefix>:recovery-quarantine-index            sorted set, member quarantine key, score = when (ms)
 *
 * Every script names all the keys it touches in KEYS, and they all start with the prefix. On Redis
 * Cluster the prefix must therefore be a hash tag (e.g. QUEUE_PREFIX={caltok}, as BullMQ requires
 * anyway; REDIS_CLUSTER=true refuses any other) so they share a slot; on a single Redis or Sentinel any prefix works.
 */

export const RECORD_TTL_SECONDS = 7 * 24 * 3600;
export const QUARANTINE_TTL_SECONDS = 30 * 24 * 3600;

export interface HeldPairKeys {
  record(ulid: string): string;
  index: string;
  quarantine(ulid: string, atMs: number): string;
  quarantineIndex: string;
}

export function heldPairKeys(prefix: string): HeldPairKeys {
  return {
    record: (ulid) => `${prefix}:recovery:${ulid}`,
    index: `${prefix}:recovery-index`,
    quarantine: (ulid, atMs) => `${prefix}:recovery-quarantine:${ulid}:${atMs}`,
    quarantineIndex: `${prefix}:recovery-quarantine-index`,
  };
}

/** KEYS: record, index. ARGV: raw, ttl seconds, now ms, ULID. The record and its index entry together. */
export const PUT = `
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[4])
return 1`;

/**
 * KEYS: record, index. ARGV: raw, ULID. Deletes the record only if it is exactly `raw` (a newer record
 * for the user stays) and unindexes the user when no record is left.
 */
export const REMOVE_IF_SAME = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
if cur == false then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 0`;

/**
 * KEYS: record, index, quarantine key, quarantine index. ARGV: raw, ULID, quarantine ttl seconds, now ms.
 * Moves the record aside only if it is still exactly `raw` (a valid record written meanwhile stays), and
 * drops index entries older than the quarantine TTL (their keys have expired).
 */
export const QUARANTINE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), KEYS[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[3]) * 1000)
return 1`;

/** KEYS: record. ARGV: old raw, new raw. Replaces the record only if unchanged, keeping its expiry. */
export const REPLACE_IF_SAME = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`;

/** KEYS: record, index. ARGV: ULID. Drops an index entry whose record expired. */
export const UNINDEX_IF_GONE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;
