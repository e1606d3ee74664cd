/**
 * Expiry normalisation for 2xx token bodies (docs/calcom-api.md#response-bodies-and-expiry-formats).
 * Pure: the caller passes `nowMs`, the time the request was sent.
 *
 * A pair Cal.com has just issued is the only live pair: an expiry we cannot read is never a reason to
 * drop it. An unusable access-token expiry is replaced by a short assumed one, so the worst case is a
 * refresh sooner than needed; an unusable refresh-token expiry is simply unknown (null).
 */
import type { ExpiryForm, ExpiryNote } from "../core/calcom-result.js";

/** Life assumed for an access token whose expiry is missing, unreadable or absurd. */
export const ASSUMED_ACCESS_TOKEN_TTL_MS = 10 * 60_000;
/** Cal.com issues 30- and 60-minute access tokens; anything past a day ahead is not a real expiry. */
export const MAX_ACCESS_TOKEN_TTL_MS = 24 * 60 * 60_000;
/** Refresh tokens live 30 days (OAuth2) or a year (managed); past ten years the value is junk. */
const MAX_REFRESH_TOKEN_TTL_MS = 10 * 366 * 24 * 60 * 60_000;
/** Below this a number is epoch seconds (1e11 s is the year 5138; 1e11 ms is March 1973). */
const SECONDS_BELOW = 1e11;

/** Absolute fields first (Cal.com's own names, then generic ones), then relative seconds. */
const ACCESS_FIELDS: readonly Field[] = [
  { name: "accessTokenExpiresAt", relative: false },
  { name: "access_token_expires_at", relative: false },
  { name: "expiresAt", relative: false },
  { name: "expires_at", relative: false },
  { name: "expires_in", relative: true },
  { name: "expiresIn", relative: true },
];
const REFRESH_FIELDS: readonly Field[] = [
  { name: "refreshTokenExpiresAt", relative: false },
  { name: "refresh_token_expires_at", relative: false },
  { name: "refresh_token_expires_in", relative: true },
  { name: "refreshTokenExpiresIn", relative: true },
];

interface Field {
  name: string;
  /** Seconds from now (`expires_in`), rather than a point in time. */
  relative: boolean;
}

/** One field read: an epoch-ms value and its form, "unparsable", or undefined when absent. */
type Reading = { ms: number; form: ExpiryForm } | "unparsable" | undefined;

const NUMERIC = /^-?\d+(\.\d+)?$/;
/** ISO 8601 date-time WITH a zone: without one it would be read in the host's time zone. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

export function accessTokenExpiry(fields: Readonly<Record<string, unknown>>, nowMs: number): { at: Date; note: ExpiryNote } {
  let firstProblem: { field: string; why: "unparsable" | "absurd" } | undefined;
  for (const f of ACCESS_FIELDS) {
    const r = read(fields[f.name], f.relative, nowMs);
    if (r === undefined) continue;
    if (r !== "unparsable" && r.ms > nowMs && r.ms <= nowMs + MAX_ACCESS_TOKEN_TTL_MS) {
      return { at: new Date(r.ms), note: { source: r.form, field: f.name } };
    }
    firstProblem ??= { field: f.name, why: r === "unparsable" ? "unparsable" : "absurd" };
  }
  const at = new Date(nowMs + ASSUMED_ACCESS_TOKEN_TTL_MS);
  if (firstProblem === undefined) return { at, note: { source: "assumed", assumed: "missing", field: null } };
  return { at, note: { source: "assumed", assumed: firstProblem.why, field: firstProblem.field } };
}

/** Same forms as the access token; null when absent, unreadable, already past or absurdly far. */
export function refreshTokenExpiry(fields: Readonly<Record<string, unknown>>, nowMs: number): Date | null {
  for (const f of REFRESH_FIELDS) {
    const r = read(fields[f.name], f.relative, nowMs);
    if (r === undefined || r === "unparsable") continue;
    if (r.ms > nowMs && r.ms <= nowMs + MAX_REFRESH_TOKEN_TTL_MS) return new Date(r.ms);
  }
  return null;
}

function read(raw: unknown, relative: boolean, nowMs: number): Reading {
  if (raw === undefined || raw === null) return undefined;
  if (relative) {
    const seconds = typeof raw === "number" ? raw : typeof raw === "string" && NUMERIC.test(raw.trim()) ? Number(raw) : Number.NaN;
    return Number.isFinite(seconds) ? { ms: nowMs + Math.round(seconds * 1000), form: "expires_in" } : "unparsable";
  }
  if (typeof raw === "number") return fromEpoch(raw, false);
  if (typeof raw !== "string") return "unparsable";
  const text = raw.trim();
  if (NUMERIC.test(text)) return fromEpoch(Number(text), true);
  if (!ISO_WITH_ZONE.test(text)) return "unparsable";
  // Date.parse only promises the extended form: "+0100" becomes "+01:00" first.
  const ms = Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
  return Number.isFinite(ms) ? { ms, form: "iso8601" } : "unparsable";
}

function fromEpoch(n: number, fromString: boolean): Reading {
  if (!Number.isFinite(n)) return "unparsable";
  const seconds = Math.abs(n) < SECONDS_BELOW;
  const ms = Math.round(seconds ? n * 1000 : n);
  return { ms, form: fromString ? "numeric_string" : seconds ? "epoch_seconds" : "epoch_ms" };
}
