/**
 * What this process remembers per user, in one bounded place: the last access token handed out (so
 * `handleCalApiResponse` knows which token Cal.com rejected when the caller does not say) and when
 * the user's last use was recorded (so the hot path sends no write on most calls).
 */
import type { TokenRefreshResult } from "./types.js";

/** Each map is capped at this many users; the least recently set entry goes first. */
export const PER_USER_MEMORY_MAX = 10_000;
/** Last use is recorded at most this often per user and process (the SQL throttles too, across processes). */
export const TOUCH_EVERY_MS = 60_000;

export interface UserMemory {
  /** Remembers the token a result hands out (if any) and returns the result unchanged. */
  handOut(result: TokenRefreshResult): TokenRefreshResult;
  remember(userUlid: string, accessToken: string): void;
  /** The last access token handed out for the user by this process. */
  lastIssued(userUlid: string): string | undefined;
  /** True (and noted) if the user's last use is due to be recorded at `now`. */
  claimTouch(userUlid: string, now: Date): boolean;
}

export function createUserMemory(max = PER_USER_MEMORY_MAX): UserMemory {
  const lastIssued = new Map<string, string>();
  const lastTouched = new Map<string, number>();

  /** Map.set that keeps insertion order as recency and drops the oldest entry past the cap. */
  function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > max) map.delete(map.keys().next().value as string);
  }

  const memory: UserMemory = {
    handOut(result) {
      if (result.tokenInfo) memory.remember(result.tokenInfo.userUlid, result.tokenInfo.accessToken);
      return result;
    },
    remember(userUlid, accessToken) {
      setBounded(lastIssued, userUlid, accessToken);
    },
    lastIssued: (userUlid) => lastIssued.get(userUlid),
    claimTouch(userUlid, now) {
      const last = lastTouched.get(userUlid);
      if (last !== undefined && now.getTime() - last < TOUCH_EVERY_MS) return false;
      setBounded(lastTouched, userUlid, now.getTime());
      return true;
    },
  };
  return memory;
}
