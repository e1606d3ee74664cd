/**
 * Classifies a Cal.com resource response (e.g. GET /v2/me) for the on-demand 498 helper.
 * 498 is the documented "expired"; a 401 `Invalid Access Token.` means the row is gone, which happens
 * to expired tokens when any refresh on the client purges them, and to every old token after a
 * force-refresh (docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token). Both mean
 * "refresh and replay once".
 */
export type AccessTokenRejection = "expired" | "invalid" | null;

export const HTTP_TOKEN_EXPIRED = 498;

const REFRESHABLE_401 = ["Invalid Access Token", "OAuth client not found given the access token", "No owner found for this access token"];

export function classifyAccessTokenRejection(status: number, bodyText: string): AccessTokenRejection {
  if (status === HTTP_TOKEN_EXPIRED) return "expired";
  if (status !== 401) return null;
  const lower = bodyText.toLowerCase();
  return REFRESHABLE_401.some((m) => lower.includes(m.toLowerCase())) ? "invalid" : null;
}
