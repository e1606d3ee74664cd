/** Values shared by every layer. Pure data: no I/O, no secrets beyond the token strings themselves. */

export type CalTokenStatus = "ACTIVE" | "RECONNECT_REQUIRED";
export type CalTokenKind = "managed" | "oauth2";

/** A token pair as Cal.com issued it; expiries already normalised to Dates. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: Date;
  /** Older Cal.com builds omit it; oauth2 grants never send it. */
  refreshTokenExpiresAt: Date | null;
}

/** What started a refresh; recorded in the audit row and logs. */
export type RefreshTrigger = "on_demand" | "api_expired" | "worker" | "cli" | "manual";

/** Injected clock so the core never reads the wall clock itself. */
export type Clock = () => Date;
/** Injected randomness in [0, 1). */
export type Rand = () => number;
