/**
 * Public contract of the fake Cal.com API v2 (see docs/calcom-api.md#what-the-fake-calcom-models).
 * Other test code depends on these shapes; change them only together with their users.
 */

export interface FakeCalcomOptions {
  /** Default 0: the OS picks a free port. */
  port?: number;
  /** Platform OAuth clients (managed users). Default [{ id: "fake-client", secret: "fake-secret" }]. */
  clients?: { id: string; secret: string }[];
  /**
   * Third-party OAuth 2.0 clients; `secret: null` is a public client (PKCE, no secret). Default
   * [{ id: "fake-oauth-client", secret: "fake-oauth-secret" }, { id: "fake-public-client", secret: null }].
   */
  oauth2Clients?: { id: string; secret: string | null }[];
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
  /** Called once the fate of each token-endpoint call is known (for a delivered answer, a second later). */
  onTokenCall?: (call: TokenCallRecord) => void;
}

/**
 * One token-endpoint call as the fake saw it (the chaos soak, scripts/soak, measures lost rotations and dead
 * refresh tokens with these). Times are the fake's clock.
 */
export interface TokenCallRecord {
  route: RouteKey;
  /** The Cal.com user the call concerned, when the fake could tell (a rotated-away refresh token still names its user). */
  calUserId?: number;
  arrivedAt: number;
  answeredAt: number;
  /** `rotated`: a pair was committed; `deadRefreshToken`: a rotated-away refresh token was presented; `other`: anything else. */
  outcome: "rotated" | "deadRefreshToken" | "other";
  /**
   * `delivered`: written, and the connection stayed open for a second after; `withheld`: a fault kept the answer
   * (dropAfterCommit, hangAfterCommit, malformedJson, noRefreshToken, a storm's 504 after commit, hang);
   * `gone`: the caller's connection was already closed when the fake answered (the caller died, or gave up);
   * `closedAfter`: written, but the connection closed within a second (the caller may have died before reading it).
   */
  delivery: "delivered" | "withheld" | "gone" | "closedAfter";
  /** For `closedAfter`: when the connection closed. */
  closedAt?: number;
  /** The fault that answered in Cal.com's place (a 5xx, a 429, a storm's answer), shaped its body, or withheld it. */
  fault?: Fault | `storm${StormStatus}`;
  /** The caller's port: which process made the call. */
  remotePort?: number;
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

/** A code as if the user had just approved an OAuth 2.0 app (docs/calcom-api.md#oauth2-authorization-code). */
export interface AuthorizationCodeOptions {
  /** Default: the first OAuth 2.0 client. */
  clientId?: string;
  /** Bind the code to this redirect URI: the exchange must send exactly it. */
  redirectUri?: string;
  /** Bind the code to a PKCE S256 challenge (base64url SHA-256 of the verifier). Required for a public client. */
  codeChallenge?: string;
  /** An existing user of the app reconnecting; default: a new user (a new grant). */
  calUserId?: number;
  /** Access-token lifetime of this user's pairs (as SeedOptions). */
  accessTokenTtlMs?: number;
}

export interface AuthorizationCodeSeed {
  code: string;
  calUserId: number;
  /** Epoch ms; single use, ten minutes. */
  expiresAt: number;
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
  /** Mints an authorization code for the token endpoint's authorization_code grant. */
  createAuthorizationCode(opts?: AuthorizationCodeOptions): AuthorizationCodeSeed;
  /** Moves the token's expiry into the past; the row is kept, so it answers 498 (until purged). */
  expireAccessToken(accessToken: string): void;
  /**
   * `false`: Cal.com is unreachable: every open connection is destroyed (calls in flight still commit, unheard)
   * and new ones are closed as soon as they are accepted, on every route; `true`: back to normal.
   */
  setReachable(reachable: boolean): void;
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
  /** The next `times` (default 1) calls to this token endpoint get this fault, before any `next` fault. */
  nextOn(route: RouteKey, fault: Fault, times?: number): void;
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
  /** Authorization codes exchanged for a pair, and code exchanges refused with invalid_grant. */
  codeExchanges: number;
  rejectedCodes: number;
  deadRefreshTokenUses: number;
  unknownRefreshTokenUses: number;
  /**
   * Rotations committed whose answer never reached the caller: a fault withheld it, or the caller's connection was
   * already closed when the fake answered (see TokenCallRecord's `withheld` and `gone`).
   */
  rotationsDroppedByFault: number;
  rotationsUndeliverable: number;
  status498: number;
  status401: number;
  status429: number;
  /** Answers for paths Cal.com does not route (404 `Cannot POST /v2/v2/…`); none of them is counted in `calls`. */
  routeNotFound: number;
}
