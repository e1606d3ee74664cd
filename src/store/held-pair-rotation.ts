/**
 * The Redis side of `cal-tokens rotate-key`: re-encrypts every indexed held-pair record that is not a
 * v2 envelope under the active key. Each record is read, decrypted with any configured key, encrypted
 * under the active key and written back only if it is still exactly what was read (its expiry kept).
 *
 * A process holding the pair keeps the old `raw`, so its later remove() leaves the re-encrypted record
 * behind; that record is then flushed by someone else, loses the compare-and-swap (the row moved on)
 * and is dropped. Records no configured key opens are reported, not touched: the worker quarantines
 * them when it meets them.
 */
import type { RedisClient } from "../queue/connection.js";
import { heldPairKeys, REPLACE_IF_SAME } from "./held-pair-keys.js";
import { isCanonicalUlid } from "./held-pair-store.js";
import type { TokenCipher } from "./token-cipher.js";

export interface HeldPairRotation {
  reencrypted: number;
  /** Changed (flushed, replaced) between our read and our write. */
  changed: string[];
  /** No configured key authenticates them. */
  failed: string[];
  /** Indexed records still not v2 under the active key after the run. */
  remaining: number;
}

const PAGE = 200;

export async function reencryptHeldPairs(deps: { redis: RedisClient; prefix: string; cipher: TokenCipher }): Promise<HeldPairRotation> {
  const { redis, cipher } = deps;
  const keys = heldPairKeys(deps.prefix);
  const res: HeldPairRotation = { reencrypted: 0, changed: [], failed: [], remaining: 0 };
  await eachStale(deps, async (ulid, raw) => {
    let fresh: string;
    try {
      fresh = cipher.encrypt(cipher.decrypt(raw, ulid, "held_pair"), ulid, "held_pair");
    } catch {
      res.failed.push(ulid);
      return;
    }
    const replaced = await redis.eval(REPLACE_IF_SAME, 1, keys.record(ulid), raw, fresh);
    if (Number(replaced) === 1) res.reencrypted += 1;
    else res.changed.push(ulid);
  });
  await eachStale(deps, async () => {
    res.remaining += 1;
  });
  return res;
}

/** Calls `f` for every indexed record that is not v2 under the active key (by its prefix only). */
async function eachStale(
  deps: { redis: RedisClient; prefix: string; cipher: TokenCipher },
  f: (ulid: string, raw: string) => Promise<void>,
): Promise<void> {
  const keys = heldPairKeys(deps.prefix);
  for (let start = 0; ; start += PAGE) {
    const members = await deps.redis.zrange(keys.index, String(start), String(start + PAGE - 1));
    for (const ulid of members.filter(isCanonicalUlid)) {
      const raw = await deps.redis.get(keys.record(ulid));
      if (raw !== null && !raw.startsWith(deps.cipher.currentPrefix)) await f(ulid, raw);
    }
    if (members.length < PAGE) break;
  }
}
