import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ConfigError, TokenDecryptError } from "../core/errors.js";

/**
 * Encryption at rest for Cal.com tokens (docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 *
 * Envelope: `v1.<keyId>.<iv b64url>.<ciphertext b64url>.<tag b64url>`, AES-256-GCM with a random
 * 12-byte IV and a 16-byte tag. The user ULID (upper-case) is the associated data, so a ciphertext
 * copied into another user's row does not authenticate. The key id travels in the envelope so
 * several keys can be accepted during a key rotation; only the first key encrypts.
 */
export interface TokenCipher {
  encrypt(plaintext: string, userUlid: string): string;
  /** Throws TokenDecryptError (reason + key id only, never plaintext or ciphertext). */
  decrypt(envelope: string, userUlid: string): string;
  /** The id new envelopes are written with; `rotate-key` re-encrypts rows whose keyIdOf differs. */
  activeKeyId: string;
  /** The key id of a well-formed v1 envelope, else null. Does not authenticate anything. */
  keyIdOf(envelope: string): string | null;
}

const VERSION = "v1";
const ALGORITHM = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
// Key ids must survive being a dot-separated envelope segment and a log field.
const KEY_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
// Buffer.from(s, "base64url") silently skips junk; validate first so a mangled envelope is an error.
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export function createTokenCipher(keys: { id: string; key: Buffer }[]): TokenCipher {
  const problems: string[] = [];
  if (keys.length === 0) problems.push("token encryption: at least one key is required");
  const byId = new Map<string, Buffer>();
  keys.forEach(({ id, key }, i) => {
    // Never echo key material; the id is not secret.
    if (!KEY_ID_RE.test(id)) problems.push(`token encryption: key #${i + 1} has an invalid id (use 1-64 of A-Z a-z 0-9 _ -)`);
    else if (byId.has(id)) problems.push(`token encryption: key id "${id}" appears twice`);
    if (key.length !== KEY_BYTES) problems.push(`token encryption: key #${i + 1} must be ${KEY_BYTES} bytes, got ${key.length}`);
    // Copy so a caller reusing/zeroing its buffer cannot change our keys.
    byId.set(id, Buffer.from(key));
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const [first] = keys;
  const activeKey = first ? byId.get(first.id) : undefined;
  if (!first || !activeKey) throw new ConfigError(["token encryption: at least one key is required"]);
  const active = first.id;

  const aad = (userUlid: string): Buffer => Buffer.from(userUlid.toUpperCase(), "utf8");

  function fail(reason: string, keyId: string | null): never {
    throw new TokenDecryptError(`token decrypt failed: ${reason}${keyId === null ? "" : ` (key id "${keyId}")`}`);
  }

  /** Splits without validating the key id, so the caller can name it in errors once it is known-safe. */
  function parse(envelope: string): { keyId: string; parts: [string, string, string] } | null {
    const parts = envelope.split(".");
    if (parts.length !== 5 || parts[0] !== VERSION) return null;
    const [, keyId, iv, ct, tag] = parts as [string, string, string, string, string];
    if (!KEY_ID_RE.test(keyId)) return null;
    return { keyId, parts: [iv, ct, tag] };
  }

  return {
    activeKeyId: active,

    encrypt(plaintext, userUlid) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, activeKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(userUlid));
      const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, active, iv.toString("base64url"), ct.toString("base64url"), tag.toString("base64url")].join(".");
    },

    decrypt(envelope, userUlid) {
      // Unknown shapes are reported without any segment: a plaintext token stored by mistake must
      // not end up in an error message.
      const parsed = typeof envelope === "string" ? parse(envelope) : null;
      if (parsed === null) fail("not a v1 envelope", null);
      const { keyId, parts } = parsed;
      const key = byId.get(keyId);
      if (key === undefined) fail("unknown key id", keyId);
      if (!parts.every((p) => B64URL_RE.test(p))) fail("malformed envelope encoding", keyId);
      const [iv, ct, tag] = parts.map((p) => Buffer.from(p, "base64url")) as [Buffer, Buffer, Buffer];
      if (iv.length !== IV_BYTES) fail(`iv must be ${IV_BYTES} bytes`, keyId);
      if (tag.length !== TAG_BYTES) fail(`auth tag must be ${TAG_BYTES} bytes`, keyId);
      try {
        const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(userUlid));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
      } catch {
        // GCM cannot tell these apart; the cause (OpenSSL's message) is dropped on purpose.
        return fail("authentication failed (tampered, wrong user or wrong key)", keyId);
      }
    },

    keyIdOf(envelope) {
      return parse(envelope)?.keyId ?? null;
    },
  };
}
