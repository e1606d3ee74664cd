import { createCipheriv, randomBytes } from "node:crypto";

/**
 * The v1 envelope exactly as releases before the v2 format wrote it (AES-256-GCM under the master key,
 * random 12-byte IV, the upper-case ULID as the only associated data): for tests that need rows or
 * records as an older release left them. test/unit/token-cipher.test.ts checks it against envelopes
 * produced by the old code.
 */
export function encryptV1(key: { id: string; key: Buffer }, plaintext: string, userUlid: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(userUlid.toUpperCase(), "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return ["v1", key.id, iv.toString("base64url"), ct.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(".");
}
