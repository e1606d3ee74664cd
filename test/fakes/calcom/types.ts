/**
 * Public contract of the fake Cal.com API v2 (see docs/calcom-api.md#what-the-fake-calcom-models).
 * Other test code depends on these shapes; change them only together with their users.
 */

export interface FakeCalcomOptions {
  /** Default 0: the OS picks a free port. */
  port?: number;
  /** Platform OAuth clients (managed users). Default [{ id: "fake-client", secret: "fake-secret" }]. */
  clients?: { id: string; secret: string }[];
  /** Third-party OAuth 2.0 clients. Default [{ id: "fake-oauth-client", secret: "fake-oauth-secret" }]. */
  oauth2Clients?: { id: string; secret: string }[];
  /** When set, managed AT expiry = now + ttl exactly (no minute flooring), so tests can use 2-second tokens. */
  accessTokenTtlMs?: number;
  /** OAuth 2.0 access-token lifetime; default 1800 s like Cal.com. */
  oauth2AccessTokenTtlMs?: number;
  /** Injectable clock used for token expiry and the rate limiter. Default Date.now. */
  now?: () => number;
  /** Override every bucket's limit, or `false` to disable; default is Cal.com's (docs/calcom-api.md#rate-limits). */
  rateLimit?: RateLimitConfig | false;
  /** Cal.com does not check managed refresh-token expiry; turn this on to make it. Default false. */
  enforceRefreshTokenExpiry?: boolean;
  /** Append every token string the fake issues, one per line (lets a test scan logs for leaked secrets). */
  issuedTokensFile?: string;
}

export interface RateLimitConfig {
  limit: number;
  windowMs: number;
  blockMs: number;
}

export interface ManagedUserSeed {
  calUserId: number;
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: number;
  refreshTokenExpiresAt: number;
}

export interface OAuth2GrantSeed {
  calUserId: number;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  accessTokenExpiresAt: number;
}

export interface SeedOptions {
  clientId?: string;
  accessTokenTtlMs?: number;
}

export interface FakeCalcom {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** Closes the server and destroys open sockets, including hung ones. */
  close(): Promise<void>;
  createManagedUser(opts?: SeedOptions): ManagedUserSeed;
  createOAuth2Grant(opts?: SeedOptions): OAuth2GrantSeed;
  /** Moves the token's expiry into the past; the row is kept, so it answers 498 (until purged). */
  expireAccessToken(accessToken: string): void;
  setAccessTokenTtlMs(ms: number): void;
  /** Faults for the three token endpoints (managed refresh, force-refresh, oauth2 token). */
  faults: FaultSwitches;
  stats(): FakeStats;
  resetStats(): void;
  isRefreshTokenLive(refreshToken: string): boolean;
  isAccessTokenValid(accessToken: string): boolean;
}

export interface FaultSwitches {
  /** Added before answering token endpoints; the rotation commits after it. */
  latencyMs: number;
  /** The next `times` (default 1) token-endpoint calls get this fault. */
  next(fault: Fault, times?: number): void;
  /** Persistent fault until cleared (null clears it). Queued `next` faults and a storm win over it. */
  always(fault: Fault | null): void;
  /** A 5xx outage on every token endpoint for a while (null ends it). Queued `next` faults win over it. */
  storm(options: StormOptions | null): void;
  /** Drops queued and persistent faults and any storm, and resets latencyMs to 0. */
  clear(): void;
}

export interface StormOptions {
  /** How long the storm lasts, on the fake's clock. */
  durationMs: number;
  /** Answer of calls that do not commit: Nest's 500/503 envelope, or a proxy's 502/504 HTML page. Default 503. */
  status?: StormStatus;
  /**
   * Share (0–1) of calls that commit the rotation and then answer a proxy's 504 page, as a gateway that
   * gave up while Cal.com was committing. Spread evenly (0.5 = every second call), not random. Default 0.
   */
  commitFraction?: number;
}

export type StormStatus = 500 | 502 | 503 | 504;
export const STORM_STATUSES: readonly StormStatus[] = [500, 502, 503, 504];

/**
 * The `expiry…` faults commit the rotation and answer 200 with the real new pair, but with the access
 * token's expiry in another form: managed `accessTokenExpiresAt` as epoch seconds, an ISO string, a
 * numeric string, left out, or absurd (a year ahead / an hour ago); OAuth2 `expires_at` in epoch
 * seconds or ISO instead of `expires_in`, `expires_in` as a string, left out, or absurd (ten years /
 * negative). `noRefreshToken` commits and leaves the new refresh token out of the answer.
 */
export type OddExpiryFault =
  | "expiryEpochSeconds"
  | "expiryIso"
  | "expiryNumericString"
  | "expiryMissing"
  | "expiryAbsurdFuture"
  | "expiryAbsurdPast";

export const ODD_EXPIRY_FAULTS: readonly OddExpiryFault[] = [
  "expiryEpochSeconds",
  "expiryIso",
  "expiryNumericString",
  "expiryMissing",
  "expiryAbsurdFuture",
  "expiryAbsurdPast",
];

export type Fault =
  | "status500"
  | "status503"
  | "html502"
  | "malformedJson"
  | "wrongShape"
  | "noRefreshToken"
  | "dropAfterCommit"
  | "hang"
  | "hangAfterCommit"
  | "rateLimit"
  | OddExpiryFault;

export const FAULTS: readonly Fault[] = [
  "status500",
  "status503",
  "html502",
  "malformedJson",
  "wrongShape",
  "noRefreshToken",
  "dropAfterCommit",
  "hang",
  "hangAfterCommit",
  "rateLimit",
  ...ODD_EXPIRY_FAULTS,
];

export type RouteKey = "managed.refresh" | "managed.forceRefresh" | "oauth2.token" | "me" | "calendars" | "managed.createUser";

export interface FakeStats {
  calls: Record<string, number>;
  refreshes: number;
  forceRefreshes: number;
  oauth2Refreshes: number;
  deadRefreshTokenUses: number;
  unknownRefreshTokenUses: number;
  status498: number;
  status401: number;
  status429: number;
  /** Answers for paths Cal.com does not route (404 `Cannot POST /v2/v2/…`); none of them is counted in `calls`. */
  routeNotFound: number;
}
