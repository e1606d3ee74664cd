/**
 * The fake's database: OAuth clients, users and token rows, driven by an injectable clock.
 * Pure (no I/O besides the `onIssue` hook): HTTP concerns live in server.ts / token-routes.ts.
 * Mirrors Cal.com's tables and transactions (docs/calcom-api.md#what-the-fake-calcom-models).
 */
import { MANAGED_AT_TTL_MS, MINUTE_MS, OAUTH2_RT_TTL_MS, emptyStats, newToken, refreshExpiryFor } from "./rows.js";
import type { BearerCheck, ManagedLookup, ManagedPair, OAuth2Lookup, OAuth2Pair, StateOptions, TokenKind, TokenRow, User } from "./rows.js";
import type { FakeStats, ManagedUserSeed, OAuth2GrantSeed, SeedOptions } from "./types.js";

export class CalcomState {
  readonly now: () => number;
  accessTokenTtlMs: number | undefined;
  stats: FakeStats = emptyStats();
  /** null: a public OAuth 2.0 client (no secret). */
  private readonly clientSecrets: Record<TokenKind, Map<string, string | null>>;
  private readonly users = new Map<number, User>();
  private readonly accessTokens = new Map<string, TokenRow>();
  /** Live refresh-token rows (what the DB holds). */
  private readonly refreshTokens = new Map<string, TokenRow>();
  /** Every refresh token ever issued: lets us tell "rotated away" from "never existed", like decoding a JWT. */
  private readonly issuedRefreshTokens = new Map<string, TokenRow>();
  /**
   * Redis `act_<token>` cache: token → expiresAt, filled on successful validation
   * (docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token).
   */
  private readonly validatedCache = new Map<string, number>();
  private nextUserId = 1001;

  constructor(private readonly opts: StateOptions) {
    this.now = opts.now;
    this.accessTokenTtlMs = opts.accessTokenTtlMs;
    this.clientSecrets = {
      managed: new Map(opts.clients.map((c) => [c.id, c.secret])),
      oauth2: new Map(opts.oauth2Clients.map((c) => [c.id, c.secret])),
    };
  }

  /** The client's secret; null for a public client; undefined for an unknown client. */
  clientSecret(kind: TokenKind, clientId: string): string | null | undefined {
    return this.clientSecrets[kind].get(clientId);
  }

  defaultClientId(kind: TokenKind): string {
    const first = this.clientSecrets[kind].keys().next();
    if (first.done) throw new Error(`fake-calcom: no ${kind} client configured`);
    return first.value;
  }

  getUser(id: number): User | undefined {
    return this.users.get(id);
  }

  findUserByEmail(email: string): User | undefined {
    for (const u of this.users.values()) if (u.email === email) return u;
    return undefined;
  }

  createUser(kind: TokenKind, clientId: string, email?: string, accessTokenTtlMs?: number): User {
    if (!this.clientSecrets[kind].has(clientId)) throw new Error(`fake-calcom: unknown ${kind} client ${clientId}`);
    const id = this.nextUserId++;
    const user: User = { id, kind, clientId, email: email ?? `user${id}+${clientId}@example.com`, accessTokenTtlMs };
    this.users.set(id, user);
    return user;
  }

  seedManaged(opts: SeedOptions = {}): ManagedUserSeed {
    const clientId = opts.clientId ?? this.defaultClientId("managed");
    const user = this.createUser("managed", clientId, undefined, opts.accessTokenTtlMs);
    return { calUserId: user.id, ...this.issueManagedPair(user) };
  }

  seedOAuth2(opts: SeedOptions = {}): OAuth2GrantSeed {
    const clientId = opts.clientId ?? this.defaultClientId("oauth2");
    const user = this.createUser("oauth2", clientId, undefined, opts.accessTokenTtlMs);
    return { calUserId: user.id, ...this.issueOAuth2Pair(user) };
  }

  issueManagedPair(user: User): ManagedPair {
    const now = this.now();
    const ttl = user.accessTokenTtlMs ?? this.accessTokenTtlMs;
    // Cal.com floors to the minute; an explicit TTL is exact so tests can use 2-second tokens.
    const accessTokenExpiresAt = ttl === undefined ? Math.floor((now + MANAGED_AT_TTL_MS) / MINUTE_MS) * MINUTE_MS : now + ttl;
    const accessToken = this.insertAccess("fake_at_", user, accessTokenExpiresAt);
    const refreshTokenExpiresAt = refreshExpiryFor(now);
    const refreshToken = this.insertRefresh("fake_rt_", user, refreshTokenExpiresAt);
    return { accessToken, refreshToken, accessTokenExpiresAt, refreshTokenExpiresAt };
  }

  issueOAuth2Pair(user: User): OAuth2Pair {
    const now = this.now();
    const ttl = user.accessTokenTtlMs ?? this.opts.oauth2AccessTokenTtlMs;
    const accessTokenExpiresAt = now + ttl;
    const accessToken = this.insertAccess("fake_oat_", user, accessTokenExpiresAt);
    const refreshToken = this.insertRefresh("fake_ort_", user, now + OAUTH2_RT_TTL_MS);
    return { accessToken, refreshToken, expiresIn: Math.max(1, Math.floor(ttl / 1000)), accessTokenExpiresAt };
  }

  /** Request-start lookup for a managed refresh (the client-with-refresh-token query). Counts misuse. */
  lookupManagedRefresh(clientId: string, refreshToken: string): ManagedLookup {
    const row = this.refreshTokens.get(refreshToken);
    if (row) {
      if (row.kind !== "managed" || row.clientId !== clientId) return "foreign";
      if (this.opts.enforceRefreshTokenExpiry && this.now() >= row.expiresAt) return "expired";
      return "ok";
    }
    if (this.issuedRefreshTokens.has(refreshToken)) {
      this.stats.deadRefreshTokenUses++;
      return "dead";
    }
    this.stats.unknownRefreshTokenUses++;
    return "unknown";
  }

  /**
   * The refresh transaction: purge expired ATs of the whole client, delete the used RT, insert a pair.
   * Returns null when the RT row vanished since lookup (a concurrent refresh won → Prisma P2025 → 404).
   */
  commitManagedRefresh(clientId: string, refreshToken: string): ManagedPair | null {
    const row = this.refreshTokens.get(refreshToken);
    const user = row && this.users.get(row.userId);
    if (!row || !user) {
      // Presenting a token another request is rotating is the same client bug as reusing a rotated one.
      this.stats.deadRefreshTokenUses++;
      return null;
    }
    const now = this.now();
    for (const [secret, at] of this.accessTokens) {
      if (at.kind === "managed" && at.clientId === clientId && now >= at.expiresAt) this.accessTokens.delete(secret);
    }
    this.refreshTokens.delete(refreshToken);
    this.stats.refreshes++;
    return this.issueManagedPair(user);
  }

  /** Force refresh: delete ALL tokens of (client, user), even unexpired, then insert a pair. Null = not a member. */
  forceRefresh(clientId: string, userId: number): ManagedPair | null {
    const user = this.users.get(userId);
    if (user?.kind !== "managed" || user.clientId !== clientId) return null;
    this.deleteTokensOf(user);
    this.stats.forceRefreshes++;
    return this.issueManagedPair(user);
  }

  /** OAuthService.refreshAccessToken order: decode/verify → client match → revoked check. */
  lookupOAuth2Refresh(clientId: string, refreshToken: string): OAuth2Lookup {
    const decoded = this.issuedRefreshTokens.get(refreshToken);
    if (!decoded) this.stats.unknownRefreshTokenUses++;
    if (decoded?.kind !== "oauth2" || this.now() >= decoded.expiresAt) return { status: "invalid" };
    if (decoded.clientId !== clientId) return { status: "mismatch" };
    if (!this.refreshTokens.has(refreshToken)) {
      this.stats.deadRefreshTokenUses++;
      return { status: "revoked" };
    }
    return { status: "ok", row: decoded };
  }

  /**
   * Rotation deletes every RT of (client, user) and stores the new one. Like Cal.com it does not re-check the
   * presented RT at commit, so of two concurrent refreshes the later one silently revokes the earlier's new RT.
   */
  commitOAuth2Refresh(row: TokenRow): OAuth2Pair {
    const user = this.users.get(row.userId);
    if (!user) throw new Error("fake-calcom: refresh token without user");
    for (const [secret, rt] of this.refreshTokens) {
      if (rt.kind === "oauth2" && rt.clientId === row.clientId && rt.userId === row.userId) this.refreshTokens.delete(secret);
    }
    this.stats.oauth2Refreshes++;
    return this.issueOAuth2Pair(user);
  }

  /**
   * Bearer validation as OAuthFlowService.validateAccessToken + ApiAuthStrategy
   * (docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token).
   */
  checkBearer(token: string): BearerCheck {
    const now = this.now();
    const cachedUntil = this.validatedCache.get(token);
    const row = this.accessTokens.get(token);
    if (cachedUntil !== undefined && now < cachedUntil) {
      // Cache hit skips the row check; the following client lookup fails if the row was deleted meanwhile.
      return row ? this.okBearer(row) : { status: "clientGone" };
    }
    if (!row) return { status: "unknown" };
    // OAuth 2.0 ATs are JWTs: once expired they are just invalid (no 498 path for them).
    if (now >= row.expiresAt) return { status: row.kind === "managed" ? "expired" : "unknown" };
    this.validatedCache.set(token, row.expiresAt);
    return this.okBearer(row);
  }

  expireAccessToken(token: string): void {
    const row = this.accessTokens.get(token);
    if (row) row.expiresAt = this.now() - 1;
    this.validatedCache.delete(token);
  }

  isRefreshTokenLive(token: string): boolean {
    return this.refreshTokens.has(token);
  }

  /** The user a refresh token was issued to, live or rotated away. */
  refreshTokenOwner(token: string): number | undefined {
    return this.issuedRefreshTokens.get(token)?.userId;
  }

  isAccessTokenValid(token: string): boolean {
    const row = this.accessTokens.get(token);
    return row !== undefined && this.now() < row.expiresAt;
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  snapshotStats(): FakeStats {
    return { ...this.stats, calls: { ...this.stats.calls } };
  }

  private okBearer(row: TokenRow): BearerCheck {
    const user = this.users.get(row.userId);
    return user ? { status: "ok", user } : { status: "unknown" };
  }

  /** Leaves the validated-token cache alone, as Cal.com leaves its Redis entries: see checkBearer. */
  private deleteTokensOf(user: User): void {
    for (const [secret, at] of this.accessTokens) {
      if (at.clientId === user.clientId && at.userId === user.id) this.accessTokens.delete(secret);
    }
    for (const [secret, rt] of this.refreshTokens) {
      if (rt.clientId === user.clientId && rt.userId === user.id) this.refreshTokens.delete(secret);
    }
  }

  private insertAccess(prefix: string, user: User, expiresAt: number): string {
    const secret = newToken(prefix);
    this.accessTokens.set(secret, { secret, kind: user.kind, clientId: user.clientId, userId: user.id, expiresAt });
    this.opts.onIssue(secret);
    return secret;
  }

  private insertRefresh(prefix: string, user: User, expiresAt: number): string {
    const secret = newToken(prefix);
    const row: TokenRow = { secret, kind: user.kind, clientId: user.clientId, userId: user.id, expiresAt };
    this.refreshTokens.set(secret, row);
    this.issuedRefreshTokens.set(secret, row);
    this.opts.onIssue(secret);
    return secret;
  }
}
