/**
 * Held pairs in Redis: rotated pairs that could not be written to Postgres, encrypted with the token
 * cipher (user ULID as associated data) and expiring after a week. Any process can flush one with the
 * usual compare-and-swap, so a pair survives the crash of the process that received it.
 */
import type { Redis } from "ioredis";
import type { HeldPair, HeldPairStore } from "../core/ports.js";
import type { TokenCipher } from "./token-cipher.js";

const TTL_SECONDS = 7 * 24 * 3600;
// Delete only if the value is unchanged: a newer record for the same user must survive.
const DELETE_IF_SAME = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`;

interface Stored {
  v: 1;
  expectedVersion: number;
  nextRefreshAt: number;
  trigger: string;
  heldSince: number;
  at: string;
  rt: string;
  atExp: number;
  rtExp: number | null;
}

export function createRedisHeldPairStore(deps: { redis: Redis; prefix: string; cipher: TokenCipher }): HeldPairStore {
  const keyOf = (userUlid: string) => `${deps.prefix}:recovery:${userUlid}`;

  function decode(userUlid: string, raw: string): HeldPair {
    const s = JSON.parse(raw) as Stored;
    return {
      userUlid,
      expectedVersion: s.expectedVersion,
      nextRefreshAt: new Date(s.nextRefreshAt),
      trigger: s.trigger,
      heldSince: new Date(s.heldSince),
      pair: {
        accessToken: deps.cipher.decrypt(s.at, userUlid),
        refreshToken: deps.cipher.decrypt(s.rt, userUlid),
        accessTokenExpiresAt: new Date(s.atExp),
        refreshTokenExpiresAt: s.rtExp === null ? null : new Date(s.rtExp),
      },
      raw,
    };
  }

  return {
    async put(held) {
      const value: Stored = {
        v: 1,
        expectedVersion: held.expectedVersion,
        nextRefreshAt: held.nextRefreshAt.getTime(),
        trigger: held.trigger,
        heldSince: held.heldSince.getTime(),
        at: deps.cipher.encrypt(held.pair.accessToken, held.userUlid),
        rt: deps.cipher.encrypt(held.pair.refreshToken, held.userUlid),
        atExp: held.pair.accessTokenExpiresAt.getTime(),
        rtExp: held.pair.refreshTokenExpiresAt?.getTime() ?? null,
      };
      const raw = JSON.stringify(value);
      await deps.redis.set(keyOf(held.userUlid), raw, "EX", TTL_SECONDS);
      return { ...held, raw };
    },
    async get(userUlid) {
      const raw = await deps.redis.get(keyOf(userUlid));
      return raw === null ? null : decode(userUlid, raw);
    },
    async list(limit) {
      const out: HeldPair[] = [];
      let cursor = "0";
      do {
        const [next, keys] = await deps.redis.scan(cursor, "MATCH", `${deps.prefix}:recovery:*`, "COUNT", 200);
        cursor = next;
        for (const key of keys) {
          const raw = await deps.redis.get(key);
          if (raw === null) continue;
          try {
            out.push(decode(key.slice(key.lastIndexOf(":") + 1), raw));
          } catch {
            // Unreadable (its key was removed from TOKEN_ENCRYPTION_KEYS): leave it to expire.
          }
          if (out.length >= limit) return out;
        }
      } while (cursor !== "0");
      return out;
    },
    async remove(held) {
      if (held.raw === undefined) return;
      await deps.redis.eval(DELETE_IF_SAME, 1, keyOf(held.userUlid), held.raw);
    },
  };
}
