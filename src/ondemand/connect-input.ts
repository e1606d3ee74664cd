/**
 * Input of `completeCalConnection` (docs/oauth2.md#the-callback): checked before anything is sent, every
 * problem listed, no value echoed (the code and the verifier are secrets).
 */
import { z } from "zod";
import { AppError, ERROR_CODES } from "../core/errors.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";

/** What the web app's callback passes: the user, and what Cal.com's redirect and the session hold. */
export interface CompleteCalConnectionInput {
  /** Your user, as a ULID (stored in canonical upper case). */
  userUlid: string;
  /** The `code` query parameter of Cal.com's redirect to your callback. */
  code: string;
  /** Exactly the redirect_uri your authorization request used. */
  redirectUri: string;
  /** The PKCE verifier (RFC 7636) kept in the session, when the authorization request sent a code_challenge. */
  codeVerifier?: string;
}

export interface ParsedConnectInput {
  userUlid: string;
  code: string;
  redirectUri: string;
  codeVerifier?: string;
}

const schema = z.strictObject({
  userUlid: z.string().refine(isUlid, "must be a 26-character ULID"),
  // Authorization codes are short opaque strings; they go into a JSON body.
  code: z.string().regex(/^[\x21-\x7e]{1,2048}$/, "must be 1 to 2048 visible ASCII characters"),
  redirectUri: z
    .string()
    .max(2048, "must be at most 2048 characters")
    .pipe(z.url({ protocol: /^https?$/, error: "must be the absolute http(s) URL the authorization request used" })),
  // RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
  codeVerifier: z
    .string()
    .regex(/^[A-Za-z0-9\-._~]{43,128}$/, "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)")
    .optional(),
});

export function parseConnectInput(input: CompleteCalConnectionInput): ParsedConnectInput {
  const res = schema.safeParse(input);
  if (!res.success) {
    const problems = res.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`);
    throw new AppError(ERROR_CODES.invalidInput, `completeCalConnection: invalid input: ${problems.join("; ")}`);
  }
  const { userUlid, code, redirectUri, codeVerifier } = res.data;
  return { userUlid: normalizeUlid(userUlid), code, redirectUri, ...(codeVerifier === undefined ? {} : { codeVerifier }) };
}

/** A public client has no secret, so Cal.com only accepts its codes with PKCE. */
export function verifierRequired(): AppError {
  return new AppError(
    ERROR_CODES.invalidInput,
    "completeCalConnection: invalid input: codeVerifier: required: the OAuth 2.0 app is a public client (no CAL_OAUTH_CLIENT_SECRET), so its codes are exchanged with PKCE",
  );
}
