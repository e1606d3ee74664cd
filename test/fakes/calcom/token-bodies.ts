/**
 * 2xx bodies of the token endpoints, as Cal.com sends them and as the body faults bend them
 * (docs/calcom-api.md#response-bodies-and-expiry-formats). Every variant carries the pair that was
 * really committed; only the expiry's form, or a missing field, differs.
 */
import { DAY_MS, type ManagedPair, type OAuth2Pair } from "./rows.js";
import type { Fault, OddExpiryFault } from "./types.js";
import { ODD_EXPIRY_FAULTS } from "./types.js";

/** Faults that change the body of a committed 200. */
export type BodyFault = "wrongShape" | "noRefreshToken" | OddExpiryFault;

export function isBodyFault(fault: Fault | null): fault is BodyFault {
  return fault === "wrongShape" || fault === "noRefreshToken" || (ODD_EXPIRY_FAULTS as readonly string[]).includes(fault ?? "");
}

export interface Success {
  status: number;
  body: unknown;
  headers: Record<string, string>;
  /** The same answer bent by a body fault. */
  reshape(fault: BodyFault): unknown;
}

const YEAR_MS = 365 * DAY_MS;
type Json = Record<string, unknown>;

function without(o: Json, key: string): Json {
  const { [key]: _omitted, ...rest } = o;
  return rest;
}

/** Managed: `accessTokenExpiresAt` in epoch ms inside `{status:"success", data}`. */
export function managedSuccess(pair: ManagedPair, now: number): Success {
  const data: Json = { ...pair };
  const exp = pair.accessTokenExpiresAt;
  const odd = (fault: OddExpiryFault): Json => {
    switch (fault) {
      case "expiryEpochSeconds":
        return { ...data, accessTokenExpiresAt: Math.floor(exp / 1000) };
      case "expiryIso":
        return { ...data, accessTokenExpiresAt: new Date(exp).toISOString() };
      case "expiryNumericString":
        return { ...data, accessTokenExpiresAt: String(exp) };
      case "expiryMissing":
        return without(data, "accessTokenExpiresAt");
      case "expiryAbsurdFuture":
        return { ...data, accessTokenExpiresAt: now + YEAR_MS };
      case "expiryAbsurdPast":
        return { ...data, accessTokenExpiresAt: now - 3_600_000 };
    }
  };
  return {
    status: 200,
    body: { status: "success", data },
    headers: {},
    reshape: (fault) => {
      if (fault === "wrongShape") return { status: "success", data: without(data, "accessToken") };
      if (fault === "noRefreshToken") return { status: "success", data: without(data, "refreshToken") };
      return { status: "success", data: odd(fault) };
    },
  };
}

/** OAuth2: a raw RFC 6749 body with relative `expires_in`, and no-store caching headers. */
export function oauth2Success(pair: OAuth2Pair): Success {
  const body: Json = {
    access_token: pair.accessToken,
    token_type: "bearer",
    refresh_token: pair.refreshToken,
    expires_in: pair.expiresIn,
  };
  const expSeconds = Math.floor(pair.accessTokenExpiresAt / 1000);
  const odd = (fault: OddExpiryFault): Json => {
    const noExpiresIn = without(body, "expires_in");
    switch (fault) {
      case "expiryEpochSeconds":
        return { ...noExpiresIn, expires_at: expSeconds };
      case "expiryIso":
        return { ...noExpiresIn, expires_at: new Date(pair.accessTokenExpiresAt).toISOString() };
      case "expiryNumericString":
        return { ...body, expires_in: String(pair.expiresIn) };
      case "expiryMissing":
        return noExpiresIn;
      case "expiryAbsurdFuture":
        return { ...body, expires_in: 10 * 365 * 86_400 };
      case "expiryAbsurdPast":
        return { ...body, expires_in: -60 };
    }
  };
  return {
    status: 200,
    body,
    headers: { "Cache-Control": "no-store", Pragma: "no-cache" },
    reshape: (fault) => {
      if (fault === "wrongShape") return without(body, "access_token");
      if (fault === "noRefreshToken") return without(body, "refresh_token");
      return odd(fault);
    },
  };
}
