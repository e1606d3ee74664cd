/**
 * The hot path from memory: the last access token this process read for a user, so a request path
 * with a fresh token costs no database round trip. Bounded (least recently used out first), short-lived
 * (`ttlMs`), and never served past the token's own expiry minus the on-demand buffer, so a cached token
 * is always one ensureValidCalToken would have returned without refreshing. Entries are dropped when
 * the pair changes anywhere in the fleet (src/fleet/pair-changes.ts), before a 498 replay, and on reconnect.
 *
 * During a database outage an entry past its TTL but before that expiry bound is still served
 * (`getForOutage`): the token is valid; only its freshness in the row is unknown.
 */
import type { CalTokenStatus } from "../core/types.js";

export interface CachedToken {
  userUlid: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  status: CalTokenStatus;
}

export interface TokenCache {
  /** A token fresh enough to hand out now, or undefined. */
  get(userUlid: string, now: Date): CachedToken | undefined;
  /** The database is down: any cached token still valid for the buffer, regardless of the TTL. */
  getForOutage(userUlid: string, now: Date): CachedToken | undefined;
  /**
   * Caches a token read from the row at `readAt`; ignored if the user was invalidated since (a change
   * published while our read was in flight must not be undone by it).
   */
  set(token: CachedToken, now: Date, readAt?: Date): void;
  delete(userUlid: string, now?: Date): void;
  clear(): void;
  readonly size: number;
}

export interface TokenCacheOptions {
  /** 0 disables the cache (every call reads the row). */
  ttlMs: number;
  /** Never serve a token that expires within this window (the on-demand buffer). */
  bufferMs: number;
  maxEntries: number;
}

interface Entry {
  token: CachedToken;
  cachedAt: number;
}

export function createTokenCache(opts: TokenCacheOptions): TokenCache {
  const entries = new Map<string, Entry>();
  /** When each user was last invalidated (bounded like the entries). */
  const invalidatedAt = new Map<string, number>();
  const usable = (e: Entry, nowMs: number) => e.token.status === "ACTIVE" && e.token.accessTokenExpiresAt.getTime() - nowMs > opts.bufferMs;

  function touch(userUlid: string, e: Entry): void {
    // Map order is recency: re-inserting moves the entry to the newest end.
    entries.delete(userUlid);
    entries.set(userUlid, e);
  }

  return {
    get(userUlid, now) {
      const e = entries.get(userUlid);
      if (!e) return undefined;
      const nowMs = now.getTime();
      if (nowMs - e.cachedAt >= opts.ttlMs || !usable(e, nowMs)) {
        if (!usable(e, nowMs)) entries.delete(userUlid);
        return undefined;
      }
      touch(userUlid, e);
      return e.token;
    },
    getForOutage(userUlid, now) {
      const e = entries.get(userUlid);
      return e && usable(e, now.getTime()) ? e.token : undefined;
    },
    set(token, now, readAt = now) {
      if (opts.ttlMs <= 0 || token.status !== "ACTIVE") return;
      if ((invalidatedAt.get(token.userUlid) ?? Number.NEGATIVE_INFINITY) >= readAt.getTime()) return;
      touch(token.userUlid, { token: { ...token }, cachedAt: now.getTime() });
      while (entries.size > opts.maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        entries.delete(oldest);
      }
    },
    delete(userUlid, now = new Date()) {
      entries.delete(userUlid);
      invalidatedAt.delete(userUlid);
      invalidatedAt.set(userUlid, now.getTime());
      if (invalidatedAt.size > opts.maxEntries) {
        const oldest = invalidatedAt.keys().next().value;
        if (oldest !== undefined) invalidatedAt.delete(oldest);
      }
    },
    clear() {
      entries.clear();
      invalidatedAt.clear();
    },
    get size() {
      return entries.size;
    },
  };
}
