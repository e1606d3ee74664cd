/** `getCalTokenStatus`: everything about a user's tokens except the tokens (no decrypt, no secret). */
import type { TokenMeta, TokenStore } from "../core/ports.js";
import type { Clock } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import { failureError, storeFailureError } from "./results.js";
import type { CalTokenStatusReport } from "./types.js";

export type GetCalTokenStatus = (userUlid: string) => Promise<CalTokenStatusReport | null>;

export function createTokenStatus(deps: { store: TokenStore; clock: Clock }): GetCalTokenStatus {
  return async function getCalTokenStatus(userUlid) {
    if (!isUlid(userUlid)) throw failureError("invalidUserUlid");
    const meta = await deps.store.getMeta(normalizeUlid(userUlid)).catch((err: unknown) => {
      throw storeFailureError(err);
    });
    return meta ? toStatusReport(meta, deps.clock()) : null;
  };
}

export function toStatusReport(meta: TokenMeta, now: Date): CalTokenStatusReport {
  return {
    userUlid: meta.userUlid,
    kind: meta.kind,
    status: meta.status,
    calUserId: meta.calUserId,
    accessTokenExpiresAt: meta.accessTokenExpiresAt,
    refreshTokenExpiresAt: meta.refreshTokenExpiresAt,
    nextRefreshAt: meta.nextRefreshAt,
    lastRefreshedAt: meta.lastRefreshedAt,
    lastUsedAt: meta.lastUsedAt,
    failureCount: meta.failureCount,
    lastFailureAt: meta.lastFailureAt,
    lastFailureCode: meta.lastFailureCode,
    rotationUncertain: meta.rotationUncertain,
    refreshInProgress: meta.leaseUntil !== null && meta.leaseUntil.getTime() > now.getTime(),
    version: meta.version,
  };
}
