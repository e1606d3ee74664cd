/**
 * Held pairs in Redis: rotated pairs that could not be written to Postgres yet. Any process can flush
 * one with the usual compare-and-swap, so a pair survives the crash of the process that received it
 * (docs/architecture.md#invariant-2-persist-first).
 *
 * - A record is one envelope that authenticates the whole record (src/store/held-pair-record.ts).
 * - A record that fails to authenticate or parse is quarantined: moved aside under its own key for 30
 *   days, logged (reason and ULID only), counted in the quarantine index; never applied, and it never
 *   stops the other records (countQuarantinedHeldPairs is the number for /metrics).
 * - Records are indexed (a sorted set of ULIDs kept with the record by one script), so listing reads
 *   the index, never the keyspace.
 *
 * Keys and the Redis Cluster requirement: src/store/held-pair-keys.ts. A record an earlier release
 * wrote (plain JSON around two token envelopes, not indexed) is never listed; the get() before that
 * user's next refresh quarantines it, since its plain fields were never authenticated.
 */
import type { RedisClient } from "../queue/connection.js";
import type { HeldPair, HeldPairStore } from "../core/ports.js";
import type { Clock } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { Logger } from "../log/logger.js";
import {
  heldPairKeys,
  type HeldPairKeys,
  PUT,
  QUARANTINE,
  QUARANTINE_TTL_SECONDS,
  RECORD_TTL_SECONDS,
  REMOVE_IF_SAME,
  UNINDEX_IF_GONE,
} from "./held-pair-keys.js";
import { decodeHeldPair, encodeHeldPair } from "./held-pair-record.js";
import type { TokenCipher } from "./token-cipher.js";

export interface HeldPairStoreDeps {
  redis: RedisClient;
  prefix: string;
  cipher: TokenCipher;
  logger: Logger;
  clock?: Clock;
}

/** Index members are written by us as canonical ULIDs; anything else was put there by someone else. */
export const isCanonicalUlid = (s: string): boolean => isUlid(s) && s === normalizeUlid(s);

/** At most this many index entries are looked at per list() call, valid or not. */
const MAX_SCANNED_FACTOR = 4;

interface Ctx {
  redis: RedisClient;
  cipher: TokenCipher;
  log: Logger;
  keys: HeldPairKeys;
  now: () => Date;
}

export function createRedisHeldPairStore(deps: HeldPairStoreDeps): HeldPairStore {
  const ctx: Ctx = {
    redis: deps.redis,
    cipher: deps.cipher,
    log: deps.logger,
    keys: heldPairKeys(deps.prefix),
    now: () => deps.clock?.() ?? new Date(),
  };
  const { redis, keys } = ctx;
  return {
    async put(held) {
      const ulid = normalizeUlid(held.userUlid);
      const raw = encodeHeldPair(ctx.cipher, held);
      await redis.eval(PUT, 2, keys.record(ulid), keys.index, raw, RECORD_TTL_SECONDS, ctx.now().getTime(), ulid);
      return { ...held, userUlid: ulid, raw };
    },
    async get(userUlid) {
      const ulid = normalizeUlid(userUlid);
      if (!isUlid(ulid)) return null;
      const raw = await redis.get(keys.record(ulid));
      if (raw === null) return null;
      const decoded = decodeHeldPair(ctx.cipher, ulid, raw, ctx.now());
      if (decoded.ok) return decoded.held;
      await quarantine(ctx, ulid, raw, decoded.reason);
      return null;
    },
    list: (limit) => list(ctx, limit),
    async remove(held) {
      if (held.raw === undefined) return;
      const ulid = normalizeUlid(held.userUlid);
      await redis.eval(REMOVE_IF_SAME, 2, keys.record(ulid), keys.index, held.raw, ulid);
    },
  };
}

/** Oldest first. Bad entries leave the index as they are met, valid ones stay: the next page starts after those. */
async function list(ctx: Ctx, limit: number): Promise<HeldPair[]> {
  const out: HeldPair[] = [];
  let start = 0;
  let scanned = 0;
  while (out.length < limit && scanned < limit * MAX_SCANNED_FACTOR) {
    const members = await ctx.redis.zrange(ctx.keys.index, String(start), String(start + (limit - out.length) - 1));
    if (members.length === 0) break;
    scanned += members.length;
    const raws = await getMany(ctx, members);
    for (const [i, member] of members.entries()) {
      try {
        const { held, stays } = await readIndexed(ctx, member, raws[i] ?? null);
        if (held) out.push(held);
        if (stays) start += 1;
      } catch (err) {
        // A Redis error on one entry must not hide the others; it stays indexed for the next round.
        start += 1;
        ctx.log.warn({ userUlid: member.slice(0, 40), err }, "held pair record not read; it stays for the next round");
      }
    }
  }
  return out;
}

/** True when the record moved aside; false when it changed meanwhile (the new one is left alone). */
async function quarantine(ctx: Ctx, ulid: string, raw: string, reason: string): Promise<boolean> {
  const { keys } = ctx;
  const at = ctx.now().getTime();
  const qkey = keys.quarantine(ulid, at);
  const args = [keys.record(ulid), keys.index, qkey, keys.quarantineIndex, raw, ulid, QUARANTINE_TTL_SECONDS, at];
  if (Number(await ctx.redis.eval(QUARANTINE, 4, ...args)) !== 1) return false;
  ctx.log.warn(
    { userUlid: ulid, reason, quarantineKey: qkey },
    "held pair record quarantined: it failed to authenticate or parse and is never applied",
  );
  return true;
}

/** One index entry: the record if valid, and whether the entry is still in the index afterwards. */
async function readIndexed(ctx: Ctx, member: string, raw: string | null): Promise<{ held: HeldPair | null; stays: boolean }> {
  const { redis, keys } = ctx;
  if (!isCanonicalUlid(member)) {
    await redis.zrem(keys.index, member);
    ctx.log.warn({ member: member.slice(0, 40) }, "held pair index entry dropped: not a canonical ULID");
    return { held: null, stays: false };
  }
  if (raw === null) {
    const dropped = await redis.eval(UNINDEX_IF_GONE, 2, keys.record(member), keys.index, member);
    return { held: null, stays: Number(dropped) !== 1 };
  }
  const decoded = decodeHeldPair(ctx.cipher, member, raw, ctx.now());
  if (decoded.ok) return { held: decoded.held, stays: true };
  return { held: null, stays: !(await quarantine(ctx, member, raw, decoded.reason)) };
}

/** Single-key reads in one round trip: no multi-key command, whatever the prefix. */
async function getMany(ctx: Ctx, members: string[]): Promise<(string | null)[]> {
  const pipeline = ctx.redis.pipeline();
  for (const m of members) pipeline.get(ctx.keys.record(m));
  const results = (await pipeline.exec()) ?? [];
  return members.map((_, i) => {
    const [err, value] = results[i] ?? [new Error("no reply"), null];
    if (err) throw err;
    return typeof value === "string" ? value : null;
  });
}

/**
 * How many records were quarantined in the last 30 days (their keys still exist): for a gauge in the
 * web process. One read-only command on the quarantine index.
 */
export async function countQuarantinedHeldPairs(redis: RedisClient, prefix: string, now: Date): Promise<number> {
  return redis.zcount(heldPairKeys(prefix).quarantineIndex, now.getTime() - QUARANTINE_TTL_SECONDS * 1000, "+inf");
}
