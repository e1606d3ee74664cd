/**
 * Cal.com API v2's CustomThrottlerGuard (docs/calcom-api.md#rate-limits): one fixed-window counter per tracker,
 * block after limit+1, relative-seconds reset header, and no Retry-After.
 */
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { RateLimitConfig } from "./types.js";

export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_BLOCK_MS = 60_000;
const LIMIT_ACCESS_TOKEN = 500;
const LIMIT_OAUTH_CLIENT = 500;
const LIMIT_IP = 120;

export interface Tracker {
  key: string;
  limit: number;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  headers: Record<string, string>;
}

interface Bucket {
  hits: number;
  windowStart: number;
  blockedUntil: number;
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Tracker priority: bearer token, then x-cal-client-id, then IP. So a refresh sending only x-cal-secret-key
 * lands in the 120/min IP bucket. The guard gives the client limit only to a platform OAuth client it
 * finds; any other x-cal-client-id (an OAuth2 app's id) gets its own bucket with the default (IP) limit.
 */
export function trackerFor(headers: IncomingHttpHeaders, ip: string, isPlatformClient: (id: string) => boolean = () => true): Tracker {
  const bearer = header(headers, "authorization")?.replace("Bearer ", "");
  if (bearer) return { key: `access_token_${sha256(bearer)}`, limit: LIMIT_ACCESS_TOKEN };
  const clientId = header(headers, "x-cal-client-id");
  if (clientId) return { key: `oauth_client_${sha256(clientId)}`, limit: isPlatformClient(clientId) ? LIMIT_OAUTH_CLIENT : LIMIT_IP };
  return { key: `ip_${header(headers, "cf-connecting-ip") ?? ip}`, limit: LIMIT_IP };
}

export function rateHeaders(limit: number, remaining: number, resetSeconds: number): Record<string, string> {
  return {
    "X-RateLimit-Limit-Default": String(limit),
    "X-RateLimit-Remaining-Default": String(Math.max(0, remaining)),
    "X-RateLimit-Reset-Default": String(resetSeconds),
  };
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  readonly windowMs: number;
  readonly blockMs: number;

  /** `override` replaces every bucket's limit (and the window/block) so tests can hit 429 quickly. */
  constructor(
    private readonly now: () => number,
    private readonly override: RateLimitConfig | undefined,
  ) {
    this.windowMs = override?.windowMs ?? DEFAULT_WINDOW_MS;
    this.blockMs = override?.blockMs ?? DEFAULT_BLOCK_MS;
  }

  hit(tracker: Tracker): RateDecision {
    const limit = this.override?.limit ?? tracker.limit;
    const now = this.now();
    let b = this.buckets.get(tracker.key);
    // A finished block or window starts counting afresh (Remaining = limit-1 on the next request).
    if (!b || (b.blockedUntil > 0 && now >= b.blockedUntil) || (b.blockedUntil === 0 && now >= b.windowStart + this.windowMs)) {
      b = { hits: 0, windowStart: now, blockedUntil: 0 };
      this.buckets.set(tracker.key, b);
    }
    if (b.blockedUntil > now) {
      return { allowed: false, limit, headers: rateHeaders(limit, 0, Math.ceil((b.blockedUntil - now) / 1000)) };
    }
    b.hits++;
    if (b.hits > limit) {
      b.blockedUntil = now + this.blockMs;
      return { allowed: false, limit, headers: rateHeaders(limit, 0, Math.ceil(this.blockMs / 1000)) };
    }
    const reset = Math.ceil((b.windowStart + this.windowMs - now) / 1000);
    return { allowed: true, limit, headers: rateHeaders(limit, limit - b.hits, reset) };
  }
}
