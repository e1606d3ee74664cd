import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { AppError, ConfigError, ERROR_CODES, TokenDecryptError } from "../core/errors.js";

/**
 * Encryption at rest for Cal.com tokens and held-pair records
 * (docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 *
 * Envelope v2 (written now): `v2.<keyId>.<salt>.<iv>.<ciphertext>.<tag>`, each binary segment
 * base64url without padding. A subkey is derived per envelope, HKDF-SHA256(master key, 16-byte random
 * salt, info = purpose + format version), and encrypts with AES-256-GCM under a random 12-byte IV and a
 * 16-byte tag. The associated data binds the format version, the key id, the field (`access_token`,
 * `refresh_token`, `held_pair`) and the upper-case user ULID: an envelope does not authenticate in
 * another user's row, in the other token column of the same row, as a held-pair record, or under
 * another key id.
 *
 * Why per-envelope subkeys: GCM with random 96-bit IVs under ONE key must stay below 2^32 messages
 * (NIST SP 800-38D), which 1M users refreshing every 30 min (≈ 10^8 envelopes a day) reach in about
 * 6 weeks. With a fresh subkey per envelope every key encrypts one message, so that bound never comes
 * into play. What is left is two envelopes drawing the same salt (same subkey): for 2^40 envelopes
 * (≈ 30 years at that rate) the chance is about 2^80 / 2^129 = 2^-49, and even then the two IVs would
 * also have to collide (2^-96) for a nonce to repeat.
 *
 * Envelope v1 (written by earlier releases, still decrypted for the token columns so nothing breaks on
 * upgrade; `rotate-key` moves rows to v2): `v1.<keyId>.<iv>.<ciphertext>.<tag>`, AES-256-GCM directly
 * under the master key, the user ULID alone as associated data. v1 is never accepted for `held_pair`.
 *
 * The key id travels in the envelope so several keys can be accepted during a rotation; only the first
 * key encrypts. Errors name the reason and the key id only, never key material, plaintext or ciphertext.
 */
export type EnvelopeField = "access_token" | "refresh_token" | "held_pair";

export interface TokenCipher {
  encrypt(plaintext: string, userUlid: string, field: EnvelopeField): string;
  /** Throws TokenDecryptError (reason + key id only, never plaintext or ciphertext). */
  decrypt(envelope: string, userUlid: string, field: EnvelopeField): string;
  /** The id new envelopes are written with. */
  activeKeyId: string;
  /** `v2.<active key id>.`: every envelope written now starts with it; `rotate-key` re-encrypts the rest. */
  currentPrefix: string;
  /** The key id of a well-formed v1 or v2 envelope, else null. Does not authenticate anything. */
  keyIdOf(envelope: string): string | null;
}

const V1 = "v1";
const V2 = "v2";
const ALGORITHM = "aes-256-gcm";
const SALT_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** HKDF info: the purpose and the format version, so a subkey can serve nothing else. */
const HKDF_INFO = Buffer.from("cal-token-worker/token-envelope/v2", "utf8");
const FIELDS: ReadonlySet<string> = new Set<EnvelopeField>(["access_token", "refresh_token", "held_pair"]);
// Key ids must survive being a dot-separated envelope segment and a log field.
const KEY_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
// Buffer.from(s, "base64url") silently skips junk; validate first so a mangled envelope is an error.
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

interface Parsed {
  version: typeof V1 | typeof V2;
  keyId: string;
  /** v2: salt, iv, ct, tag; v1: iv, ct, tag. */
  segments: string[];
}

/** Splits without authenticating; the key id is checked so errors may name it. */
function parse(envelope: unknown): Parsed | null {
  if (typeof envelope !== "string") return null;
  const parts = envelope.split(".");
  const [version, keyId] = parts;
  if (keyId === undefined || !KEY_ID_RE.test(keyId)) return null;
  if (version === V2 && parts.length === 6) return { version, keyId, segments: parts.slice(2) };
  if (version === V1 && parts.length === 5) return { version, keyId, segments: parts.slice(2) };
  return null;
}

function fail(reason: string, keyId: string | null): never {
  throw new TokenDecryptError(`token decrypt failed: ${reason}${keyId === null ? "" : ` (key id "${keyId}")`}`);
}

function checkField(field: string): void {
  // A wrong field is a programming error; it must never silently produce unbound envelopes.
  if (!FIELDS.has(field)) throw new AppError(ERROR_CODES.internal, "token cipher: unknown envelope field");
}

/** Unambiguous (JSON) so no choice of values can make two different bindings encode alike. */
const aadV2 = (keyId: string, field: EnvelopeField, userUlid: string): Buffer =>
  Buffer.from(JSON.stringify([V2, keyId, field, userUlid.toUpperCase()]), "utf8");

const subkey = (master: Buffer, salt: Buffer): Buffer => Buffer.from(hkdfSync("sha256", master, salt, HKDF_INFO, KEY_BYTES));

function checkKeys(keys: { id: string; key: Buffer }[]): Map<string, Buffer> {
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
  return byId;
}

/** Decodes the binary segments after checking encoding and lengths (`lengths[i]` null = any). */
function decodeSegments(p: Parsed, lengths: (number | null)[], names: string[]): Buffer[] {
  if (!p.segments.every((s) => B64URL_RE.test(s))) fail("malformed envelope encoding", p.keyId);
  return p.segments.map((s, i) => {
    const buf = Buffer.from(s, "base64url");
    const want = lengths[i];
    if (want !== null && want !== undefined && buf.length !== want) fail(`${names[i]} must be ${want} bytes`, p.keyId);
    return buf;
  });
}

function openGcm(key: Buffer, iv: Buffer, aad: Buffer, ct: Buffer, tag: Buffer, keyId: string): string {
  try {
    const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString("utf8");
  } catch {
    // GCM cannot tell these apart; the cause (OpenSSL's message) is dropped on purpose.
    return fail("authentication failed (tampered, or wrong user, field or key)", keyId);
  }
}

export function createTokenCipher(keys: { id: string; key: Buffer }[]): TokenCipher {
  const byId = checkKeys(keys);
  const active = keys[0]?.id;
  const activeKey = active === undefined ? undefined : byId.get(active);
  if (active === undefined || activeKey === undefined) throw new ConfigError(["token encryption: at least one key is required"]);

  return {
    activeKeyId: active,
    currentPrefix: `${V2}.${active}.`,

    encrypt(plaintext, userUlid, field) {
      checkField(field);
      const salt = randomBytes(SALT_BYTES);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, subkey(activeKey, salt), iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aadV2(active, field, userUlid));
      const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [V2, active, ...[salt, iv, ct, tag].map((b) => b.toString("base64url"))].join(".");
    },

    decrypt(envelope, userUlid, field) {
      checkField(field);
      // Unknown shapes are reported without any segment: a plaintext token stored by mistake must
      // not end up in an error message.
      const parsed = parse(envelope);
      if (parsed === null) fail("not an envelope", null);
      const { keyId } = parsed;
      const key = byId.get(keyId);
      if (key === undefined) fail("unknown key id", keyId);
      if (parsed.version === V1) {
        // v1 predates field binding: only the token columns ever held v1 envelopes.
        if (field === "held_pair") fail("a v1 envelope is not accepted for a held pair", keyId);
        const [iv, ct, tag] = decodeSegments(parsed, [IV_BYTES, null, TAG_BYTES], ["iv", "ciphertext", "auth tag"]) as [
          Buffer,
          Buffer,
          Buffer,
        ];
        return openGcm(key, iv, Buffer.from(userUlid.toUpperCase(), "utf8"), ct, tag, keyId);
      }
      const [salt, iv, ct, tag] = decodeSegments(
        parsed,
        [SALT_BYTES, IV_BYTES, null, TAG_BYTES],
        ["salt", "iv", "ciphertext", "auth tag"],
      ) as [Buffer, Buffer, Buffer, Buffer];
      return openGcm(subkey(key, salt), iv, aadV2(keyId, field, userUlid), ct, tag, keyId);
    },

    keyIdOf(envelope) {
      return parse(envelope)?.keyId ?? null;
    },
  };
}
