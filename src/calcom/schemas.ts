/**
 * Strict shapes of Cal.com's 2xx token bodies (docs/calcom-api.md#response-bodies-and-expiry-formats).
 * A body that does not match is `malformed`, never a half-filled pair: storing a pair with a bogus
 * expiry would make the worker refresh at the wrong time, and storing an empty token would lose the
 * grant.
 */
import { z } from "zod";
import type { TokenPair } from "../core/types.js";

/**
 * Epoch milliseconds. The lower bound (2001-09-09) rejects epoch *seconds*, which a future API version
 * could plausibly send and which would read as 1970; the upper bound (year 5138) rejects microseconds.
 */
const epochMs = z.number().gt(1e12).lt(1e14);

const managedData = z.object({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1),
  accessTokenExpiresAt: epochMs,
  // Older builds omit it (docs/calcom-api.md#response-bodies-and-expiry-formats); null is treated the same way.
  refreshTokenExpiresAt: epochMs.nullish(),
});

const managedBody = z.object({ status: z.literal("success"), data: managedData });

/** Managed refresh / force-refresh body → pair, or a reason (no token values in it) why not. */
export function parseManagedPair(body: unknown): { ok: true; pair: TokenPair } | { ok: false; reason: string } {
  const parsed = managedBody.safeParse(body);
  if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error) };
  const d = parsed.data.data;
  return {
    ok: true,
    pair: {
      accessToken: d.accessToken,
      refreshToken: d.refreshToken,
      accessTokenExpiresAt: new Date(d.accessTokenExpiresAt),
      refreshTokenExpiresAt: d.refreshTokenExpiresAt == null ? null : new Date(d.refreshTokenExpiresAt),
    },
  };
}

/** Cal.com's documented OAuth2 access-token life (docs/calcom-api.md#oauth2-token-endpoint), used only when `expires_in` is absent. */
export const OAUTH2_DEFAULT_EXPIRES_IN_S = 1800;

const oauth2Tokens = z.object({
  access_token: z.string().min(1),
  // Optional here so its absence gets its own, explicit message (see parseOAuth2Pair).
  refresh_token: z.string().min(1).optional(),
  // RFC 6749 makes expires_in RECOMMENDED, not required. A missing one gets the documented default
  // rather than `malformed`: oauth2 has no force-refresh, so discarding a good pair forces a reconnect.
  expires_in: z
    .number()
    .positive()
    .max(10 * 365 * 24 * 3600)
    .optional(),
  token_type: z.string().optional(),
});

/** Raw RFC body (latest) or the older `{status:"success", data:{…}}` wrapper (docs/calcom-api.md#oauth2-token-endpoint). */
const oauth2Body = z.union([z.object({ status: z.literal("success"), data: oauth2Tokens }), oauth2Tokens]);

export function parseOAuth2Pair(body: unknown, nowMs: number): { ok: true; pair: TokenPair } | { ok: false; reason: string } {
  const parsed = oauth2Body.safeParse(body);
  if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error) };
  const t = "data" in parsed.data ? parsed.data.data : parsed.data;
  // Cal.com rotates on every refresh (docs/calcom-api.md#strict-rotation-no-grace-window): the old
  // refresh token is already deleted server-side, so "no refresh_token" must not silently mean "keep
  // the old one" (RFC 6749 §6 would allow that).
  if (t.refresh_token === undefined) return { ok: false, reason: "response has no refresh_token" };
  const expiresInS = t.expires_in ?? OAUTH2_DEFAULT_EXPIRES_IN_S;
  return {
    ok: true,
    pair: {
      accessToken: t.access_token,
      refreshToken: t.refresh_token,
      accessTokenExpiresAt: new Date(nowMs + Math.round(expiresInS * 1000)),
      refreshTokenExpiresAt: null,
    },
  };
}

/** Field paths and issue codes only: zod messages can quote the offending input (a token). */
function describeIssues(err: z.ZodError): string {
  const parts = err.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.code}`);
  return `unexpected body shape (${parts.join("; ")})`;
}
