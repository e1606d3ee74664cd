/**
 * Row shapes, stats and small pure helpers shared by the fake's state machine (state.ts).
 * Kept apart so state.ts reads as the list of Cal.com transactions it mirrors.
 */
import { randomBytes } from "node:crypto";
import type { FakeStats } from "./types.js";

export type TokenKind = "managed" | "oauth2";

export interface TokenRow {
  secret: string;
  kind: TokenKind;
  clientId: string;
  userId: number;
  expiresAt: number;
}

export interface User {
  id: number;
  kind: TokenKind;
  clientId: string;
  email: string;
  /** Per-user override so a seeded short-lived user keeps short tokens across refreshes. */
  accessTokenTtlMs: number | undefined;
}

export interface ManagedPair {
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: number;
  refreshTokenExpiresAt: number;
}

export interface OAuth2Pair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  accessTokenExpiresAt: number;
}

export interface StateOptions {
  clients: { id: string; secret: string }[];
  /** `secret: null`: a public client (PKCE, no secret). */
  oauth2Clients: { id: string; secret: string | null }[];
  accessTokenTtlMs: number | undefined;
  oauth2AccessTokenTtlMs: number;
  now: () => number;
  enforceRefreshTokenExpiry: boolean;
  onIssue: (token: string) => void;
}

export type ManagedLookup = "ok" | "unknown" | "dead" | "foreign" | "expired";
export type OAuth2Lookup = { status: "ok"; row: TokenRow } | { status: "invalid" | "mismatch" | "revoked" };
export type BearerCheck = { status: "ok"; user: User } | { status: "unknown" | "expired" | "clientGone" };

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
export const MANAGED_AT_TTL_MS = 60 * MINUTE_MS;
export const OAUTH2_RT_TTL_MS = 30 * DAY_MS;

export const ROUTE_KEYS = ["managed.refresh", "managed.forceRefresh", "oauth2.token", "me", "calendars", "managed.createUser"] as const;

export function emptyStats(): FakeStats {
  const calls: Record<string, number> = {};
  for (const key of ROUTE_KEYS) calls[key] = 0;
  return {
    calls,
    refreshes: 0,
    forceRefreshes: 0,
    oauth2Refreshes: 0,
    codeExchanges: 0,
    rejectedCodes: 0,
    deadRefreshTokenUses: 0,
    unknownRefreshTokenUses: 0,
    rotationsDroppedByFault: 0,
    rotationsUndeliverable: 0,
    status498: 0,
    status401: 0,
    status429: 0,
    routeNotFound: 0,
  };
}

/** Cal.com: refreshExpiry = startOf('day')(now + 1 year); UTC here. */
export function refreshExpiryFor(now: number): number {
  const d = new Date(now);
  d.setUTCFullYear(d.getUTCFullYear() + 1);
  return Math.floor(d.getTime() / DAY_MS) * DAY_MS;
}

export function newToken(prefix: string): string {
  return `${prefix}${randomBytes(32).toString("base64url")}`;
}
