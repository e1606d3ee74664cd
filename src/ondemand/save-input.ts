import { z } from "zod";
import { AppError, ERROR_CODES } from "../core/errors.js";
import type { CalTokenKind, TokenPair } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { SaveCalTokensInput } from "./types.js";

/**
 * The largest token accepted (UTF-8 bytes), by `saveCalTokens` and by `cal-tokens import` alike.
 * Cal.com's tokens are a few hundred bytes; anything near this is not a token.
 */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** Shown when a managed user is saved without `calUserId` (the import refuses it unless told). */
export const MISSING_CAL_USER_ID_WARNING =
  "managed user saved without calUserId: if its refresh token is ever lost, force-refresh cannot recover it and the user must reconnect";

/** Epoch ms of 2286-11-20: later than any token expiry, earlier than a microsecond timestamp. */
const MAX_INSTANT_MS = 1e13;

/** Cal.com sends epoch milliseconds; a value below 1e12 is almost certainly seconds, a silent 1000× error. */
const instant = z.unknown().transform((v, ctx): Date => {
  const ms = v instanceof Date ? v.getTime() : typeof v === "number" ? v : Number.NaN;
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: "custom", message: "must be a valid Date or epoch milliseconds" });
    return z.NEVER;
  }
  if (typeof v === "number" && ms < 1e12) {
    ctx.addIssue({ code: "custom", message: "epoch milliseconds expected (this looks like seconds)" });
    return z.NEVER;
  }
  if (ms >= MAX_INSTANT_MS) {
    ctx.addIssue({ code: "custom", message: "must be before the year 2286 (epoch milliseconds expected, not microseconds)" });
    return z.NEVER;
  }
  return v instanceof Date ? v : new Date(ms);
});

// Tokens go into HTTP headers and bodies: visible ASCII only, as OAuth 2.0 tokens are (RFC 6749 A.12).
const token = z
  .string()
  .trim()
  .min(1, "must be a non-empty string")
  .refine((s) => Buffer.byteLength(s, "utf8") <= MAX_TOKEN_BYTES, `must be at most ${MAX_TOKEN_BYTES / 1024} KiB`)
  .refine((s) => /^[\x21-\x7e]*$/.test(s), "must be visible ASCII characters without spaces");

const schema = z
  .object({
    userUlid: z.string().refine(isUlid, "must be a 26-character ULID"),
    accessToken: token,
    refreshToken: token,
    accessTokenExpiresAt: instant,
    refreshTokenExpiresAt: z.union([z.null(), z.undefined(), instant]).optional(),
    kind: z.enum(["managed", "oauth2"]).default("managed"),
    // The column is a Postgres int4.
    calUserId: z.number().int().positive().max(2_147_483_647).optional(),
  })
  .refine((v) => v.accessToken !== v.refreshToken, { message: "access and refresh token must differ", path: ["refreshToken"] });

export interface ParsedSaveInput {
  /** Canonical (upper case). */
  userUlid: string;
  kind: CalTokenKind;
  calUserId: number | null;
  pair: TokenPair;
  /**
   * A managed user without `calUserId`: accepted (the public contract makes it optional), but a lost
   * refresh token cannot be force-refreshed, so the caller logs MISSING_CAL_USER_ID_WARNING.
   */
  missingCalUserId: boolean;
}

/** One problem: the field it concerns and the rule it breaks, never the value. */
export interface SaveInputProblem {
  field: string;
  message: string;
}

export type SaveInputCheck = { ok: true; value: ParsedSaveInput } | { ok: false; problems: SaveInputProblem[] };

/** Validates `saveCalTokens` input and lists every problem. */
export function checkSaveInput(input: unknown): SaveInputCheck {
  const res = schema.safeParse(input);
  if (!res.success) {
    return { ok: false, problems: res.error.issues.map((i) => ({ field: i.path.join(".") || "input", message: i.message })) };
  }
  const v = res.data;
  const calUserId = v.calUserId ?? null;
  return {
    ok: true,
    value: {
      userUlid: normalizeUlid(v.userUlid),
      kind: v.kind,
      calUserId,
      pair: {
        accessToken: v.accessToken,
        refreshToken: v.refreshToken,
        accessTokenExpiresAt: v.accessTokenExpiresAt,
        refreshTokenExpiresAt: v.refreshTokenExpiresAt ?? null,
      },
      missingCalUserId: v.kind === "managed" && calUserId === null,
    },
  };
}

/** Validates `saveCalTokens` input; the error lists every problem and never echoes a value. */
export function parseSaveInput(input: SaveCalTokensInput): ParsedSaveInput {
  const res = checkSaveInput(input);
  if (!res.ok) {
    const problems = res.problems.map((p) => `${p.field}: ${p.message}`);
    throw new AppError(ERROR_CODES.invalidInput, `saveCalTokens: invalid input: ${problems.join("; ")}`);
  }
  return res.value;
}
