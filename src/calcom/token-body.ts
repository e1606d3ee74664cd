/**
 * Lenient reading of a 2xx token body (docs/calcom-api.md#response-bodies-and-expiry-formats).
 *
 * A 2xx means Cal.com has already rotated: the refresh token in this body is the only live one. So
 * any body that carries both tokens becomes a pair, whatever its wrapper, key style or expiry form;
 * only the absence of a token makes it unusable. Reasons name fields, never values.
 */
import type { ExpiryNote } from "../core/calcom-result.js";
import type { TokenPair } from "../core/types.js";
import { accessTokenExpiry, refreshTokenExpiry } from "./expiry.js";

/** Cal.com's tokens are a few hundred bytes; a larger value is not a token we should store or send. */
export const MAX_TOKEN_BYTES = 16 * 1024;

const ACCESS_KEYS = ["accessToken", "access_token"] as const;
const REFRESH_KEYS = ["refreshToken", "refresh_token"] as const;

export type BodyParse = { ok: true; pair: TokenPair; expiry: ExpiryNote } | { ok: false; reason: string };

/**
 * Managed bodies `{status:"success", data:{accessToken,…}}`, OAuth2 RFC 6749 bodies, the older
 * `{status, data}` OAuth2 wrapper, and either key style in any of them.
 */
export function parseTokenBody(body: unknown, nowMs: number): BodyParse {
  const fields = tokenObject(body);
  if (fields === undefined) return { ok: false, reason: "no access or refresh token in the body" };
  const access = token(fields, ACCESS_KEYS);
  const refresh = token(fields, REFRESH_KEYS);
  if ("value" in access && "value" in refresh) {
    const { at, note } = accessTokenExpiry(fields, nowMs);
    const refreshTokenExpiresAt = refreshTokenExpiry(fields, nowMs);
    return {
      ok: true,
      pair: { accessToken: access.value, refreshToken: refresh.value, accessTokenExpiresAt: at, refreshTokenExpiresAt },
      expiry: note,
    };
  }
  if ("value" in access && "problem" in refresh) {
    // RFC 6749 §6 would let a server keep the old refresh token; Cal.com never does.
    return {
      ok: false,
      reason: `access token without a refresh token (${refresh.problem}): Cal.com rotates on every refresh, so the old refresh token is already dead and cannot be kept`,
    };
  }
  const at = "problem" in access ? access.problem : "present";
  const rt = "problem" in refresh ? refresh.problem : "present";
  return { ok: false, reason: `no usable access token (${at}); refresh token ${rt}` };
}

/** The object holding the tokens: the body itself, or its `data` wrapper. */
function tokenObject(body: unknown): Readonly<Record<string, unknown>> | undefined {
  if (!isRecord(body)) return undefined;
  const hasToken = (o: Record<string, unknown>): boolean => [...ACCESS_KEYS, ...REFRESH_KEYS].some((k) => k in o);
  if (hasToken(body)) return body;
  const data = body.data;
  return isRecord(data) && hasToken(data) ? data : undefined;
}

/** The token string, or why there is none. */
function token(fields: Readonly<Record<string, unknown>>, keys: readonly string[]): { value: string } | { problem: string } {
  const key = keys.find((k) => fields[k] !== undefined && fields[k] !== null);
  if (key === undefined) return { problem: "missing" };
  const v = fields[key];
  if (typeof v !== "string") return { problem: `${key} is not a string` };
  if (v.length === 0) return { problem: `${key} is empty` };
  if (Buffer.byteLength(v, "utf8") > MAX_TOKEN_BYTES) return { problem: `${key} is over 16 KiB` };
  return { value: v };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
