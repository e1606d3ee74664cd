import type { CalTokenKind, CalTokenStatus } from "../core/types.js";

export type { CalTokenKind, CalTokenStatus } from "../core/types.js";

/** Public contract (docs/architecture.md#public-surface). */
export interface CalTokenInfo {
  userUlid: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  status: CalTokenStatus;
}

/** Public contract (docs/architecture.md#public-surface). `error` may accompany `success: true` when a refresh failed but the current token is still valid. */
export interface TokenRefreshResult {
  success: boolean;
  refreshed: boolean;
  tokenInfo?: CalTokenInfo;
  /** `retryAfterMs`: when a retryable failure may be worth trying again (a cool-down, a refresh in progress, a rate limit). */
  error?: { code: string; message: string; retryable: boolean; retryAfterMs?: number };
}

export interface SaveCalTokensInput {
  userUlid: string;
  accessToken: string;
  refreshToken: string;
  /** Date, or epoch milliseconds as Cal.com sends them. */
  accessTokenExpiresAt: Date | number;
  refreshTokenExpiresAt?: Date | number | null;
  kind?: CalTokenKind;
  /** Cal.com user id; needed to force-refresh a managed user whose refresh token was lost. */
  calUserId?: number;
}

/** Everything about a user's tokens except the tokens. */
export interface CalTokenStatusReport {
  userUlid: string;
  kind: CalTokenKind;
  status: CalTokenStatus;
  calUserId: number | null;
  accessTokenExpiresAt: Date;
  refreshTokenExpiresAt: Date | null;
  nextRefreshAt: Date;
  lastRefreshedAt: Date | null;
  lastUsedAt: Date | null;
  failureCount: number;
  lastFailureAt: Date | null;
  lastFailureCode: string | null;
  rotationUncertain: boolean;
  refreshInProgress: boolean;
  version: number;
}
