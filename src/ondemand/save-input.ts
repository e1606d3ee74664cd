import { z } from "zod";
import { AppError, ERROR_CODES } from "../core/errors.js";
import type { CalTokenKind, TokenPair } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { SaveCalTokensInput } from "./types.js";

/** Cal.com sends epoch milliseconds; a value below 1e12 is almost certainly seconds, a silent 1000× error. */
const instant = z.unknown().transform((v, ctx): Date => {
  if (v instanceof Date && !Number.isNaN(v.getTime())) return v;
  if (typeof v === "number" && Number.isFinite(v)) {
    if (v >= 1e12) return new Date(v);
    ctx.addIssue({ code: "custom", message: "epoch milliseconds expected (this looks like seconds)" });
    return z.NEVER;
  }
  ctx.addIssue({ code: "custom", message: "must be a valid Date or epoch milliseconds" });
  return z.NEVER;
});

const schema = z
  .object({
    userUlid: z.string().refine(isUlid, "must be a 26-character ULID"),
    accessToken: z.string().trim().min(1, "must be a non-empty string"),
    refreshToken: z.string().trim().min(1, "must be a non-empty string"),
    accessTokenExpiresAt: instant,
    refreshTokenExpiresAt: z.union([z.null(), z.undefined(), instant]).optional(),
    kind: z.enum(["managed", "oauth2"]).default("managed"),
    calUserId: z.number().int().positive().optional(),
  })
  .refine((v) => v.accessToken !== v.refreshToken, { message: "access and refresh token must differ", path: ["refreshToken"] });

export interface ParsedSaveInput {
  userUlid: string;
  kind: CalTokenKind;
  calUserId: number | null;
  pair: TokenPair;
}

/** Validates `saveCalTokens` input; the error lists every problem and never echoes a value. */
export function parseSaveInput(input: SaveCalTokensInput): ParsedSaveInput {
  const res = schema.safeParse(input);
  if (!res.success) {
    const problems = res.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`);
    throw new AppError(ERROR_CODES.invalidInput, `saveCalTokens: invalid input: ${problems.join("; ")}`);
  }
  const v = res.data;
  return {
    userUlid: normalizeUlid(v.userUlid),
    kind: v.kind,
    calUserId: v.calUserId ?? null,
    pair: {
      accessToken: v.accessToken,
      refreshToken: v.refreshToken,
      accessTokenExpiresAt: v.accessTokenExpiresAt,
      refreshTokenExpiresAt: v.refreshTokenExpiresAt ?? null,
    },
  };
}
