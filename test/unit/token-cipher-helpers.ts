/** Shared by the token-cipher unit tests. */
import { randomBytes } from "node:crypto";
import { ERROR_CODES, TokenDecryptError } from "../../src/core/errors.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";

export const USER = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
export const OTHER = "01BX5ZZKBKACTAV9WEVGEMMVRZ";
export const SECRET = "cal_at_4f1c2b9e8d7a6b5c4d3e2f1a0b9c8d7e";

export const key = () => randomBytes(32);
export const one = () => createTokenCipher([{ id: "k1", key: key() }]);

/** Replaces one envelope segment (v2: 1 = key id, 2 = salt, 3 = iv, 4 = ciphertext, 5 = tag) with `f(segment)`. */
export function mutate(envelope: string, index: number, f: (s: string) => string): string {
  const parts = envelope.split(".");
  parts[index] = f(parts[index]!);
  return parts.join(".");
}

/** Flips the low bit of the first byte of a base64url segment. */
export const flipBit = (seg: string): string => {
  const buf = Buffer.from(seg, "base64url");
  buf[0] = buf[0]! ^ 1;
  return buf.toString("base64url");
};

/** Asserts a TokenDecryptError whose message names neither plaintext nor any ciphertext segment. */
export function expectDecryptError(fn: () => unknown, envelope: string, reason: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TokenDecryptError);
  const err = caught as TokenDecryptError;
  expect(err.code).toBe(ERROR_CODES.decryptFailed);
  expect(err.retryable).toBe(false);
  expect(err.message).toMatch(reason);
  expect(err.message).not.toContain(SECRET);
  if (envelope.length >= 8) expect(err.message).not.toContain(envelope);
  for (const seg of envelope.split(".").slice(2)) if (seg.length >= 8) expect(err.message).not.toContain(seg);
  expect(err.cause).toBeUndefined();
}
