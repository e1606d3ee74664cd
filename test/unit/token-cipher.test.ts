import { randomBytes } from "node:crypto";
import { ConfigError, ERROR_CODES, TokenDecryptError } from "../../src/core/errors.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";

const USER = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const OTHER = "01BX5ZZKBKACTAV9WEVGEMMVRZ";
const SECRET = "cal_at_4f1c2b9e8d7a6b5c4d3e2f1a0b9c8d7e";

const key = () => randomBytes(32);

/** Replaces one envelope segment (1 = key id, 2 = iv, 3 = ciphertext, 4 = tag) with `f(segment)`. */
function mutate(envelope: string, index: number, f: (s: string) => string): string {
  const parts = envelope.split(".");
  parts[index] = f(parts[index]!);
  return parts.join(".");
}

/** Flips the low bit of the first byte of a base64url segment. */
const flipBit = (seg: string): string => {
  const buf = Buffer.from(seg, "base64url");
  buf[0] = buf[0]! ^ 1;
  return buf.toString("base64url");
};

/** Asserts a TokenDecryptError whose message names neither plaintext nor any ciphertext segment. */
function expectDecryptError(fn: () => unknown, envelope: string, reason: RegExp): void {
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

describe("createTokenCipher", () => {
  it("round-trips and never puts the plaintext in the envelope", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const env = cipher.encrypt(SECRET, USER);
    expect(env).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(env).not.toContain(SECRET);
    expect(env).not.toContain(Buffer.from(SECRET).toString("base64url"));
    expect(cipher.decrypt(env, USER)).toBe(SECRET);
    expect(cipher.keyIdOf(env)).toBe("k1");
    expect(cipher.activeKeyId).toBe("k1");
  });

  it("uses a fresh IV per encryption", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const a = cipher.encrypt(SECRET, USER);
    const b = cipher.encrypt(SECRET, USER);
    expect(a).not.toBe(b);
    expect(a.split(".")[2]).not.toBe(b.split(".")[2]);
  });

  it("binds the upper-case ULID, so case does not matter but the user does", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const env = cipher.encrypt(SECRET, USER.toLowerCase());
    expect(cipher.decrypt(env, USER)).toBe(SECRET);
    expectDecryptError(() => cipher.decrypt(env, OTHER), env, /authentication failed.*"k1"/);
  });

  it.each([
    ["iv", 2],
    ["ciphertext", 3],
    ["tag", 4],
  ])("rejects a tampered %s", (_name, index) => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const env = mutate(cipher.encrypt(SECRET, USER), index, flipBit);
    expectDecryptError(() => cipher.decrypt(env, USER), env, /authentication failed \(.*\) \(key id "k1"\)/);
  });

  it("rejects truncated iv and tag by length before trying to decrypt", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const env = cipher.encrypt(SECRET, USER);
    const shortIv = mutate(env, 2, (s) => s.slice(0, 8));
    const shortTag = mutate(env, 4, (s) => s.slice(0, 8));
    expectDecryptError(() => cipher.decrypt(shortIv, USER), shortIv, /iv must be 12 bytes/);
    expectDecryptError(() => cipher.decrypt(shortTag, USER), shortTag, /auth tag must be 16 bytes/);
  });

  it("rejects an unknown key id and names it", () => {
    const a = createTokenCipher([{ id: "old", key: key() }]);
    const b = createTokenCipher([{ id: "new", key: key() }]);
    const env = a.encrypt(SECRET, USER);
    expectDecryptError(() => b.decrypt(env, USER), env, /unknown key id \(key id "old"\)/);
  });

  it("rejects a known key id with the wrong key material", () => {
    const a = createTokenCipher([{ id: "k1", key: key() }]);
    const b = createTokenCipher([{ id: "k1", key: key() }]);
    const env = a.encrypt(SECRET, USER);
    expectDecryptError(() => b.decrypt(env, USER), env, /authentication failed/);
  });

  it.each([
    ["plaintext stored by mistake", SECRET],
    ["a JWT-like token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"],
    ["wrong version", "v2.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"],
    ["too few segments", "v1.k1.AAAAAAAAAAAAAAAA.AAAA"],
    ["empty", ""],
  ])("rejects %s without echoing it", (_name, env) => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    expectDecryptError(() => cipher.decrypt(env, USER), env, /^token decrypt failed: not a v1 envelope$/);
  });

  it("rejects non-base64url segments", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    const env = mutate(cipher.encrypt(SECRET, USER), 3, (s) => `${s}!`);
    expectDecryptError(() => cipher.decrypt(env, USER), env, /malformed envelope encoding/);
  });

  it("rotation: [new, old] decrypts envelopes made by [old] and encrypts with new", () => {
    const oldKey = { id: "k2024", key: key() };
    const newKey = { id: "k2025", key: key() };
    const before = createTokenCipher([oldKey]);
    const during = createTokenCipher([newKey, oldKey]);
    const legacy = before.encrypt(SECRET, USER);
    expect(during.decrypt(legacy, USER)).toBe(SECRET);
    expect(during.keyIdOf(legacy)).toBe("k2024");
    const fresh = during.encrypt(SECRET, USER);
    expect(during.activeKeyId).toBe("k2025");
    expect(during.keyIdOf(fresh)).toBe("k2025");
    expect(during.decrypt(fresh, USER)).toBe(SECRET);
    // Once the old key is retired, old envelopes must fail loudly rather than decrypt to garbage.
    const after = createTokenCipher([newKey]);
    expect(() => after.decrypt(legacy, USER)).toThrow(TokenDecryptError);
  });

  it("keyIdOf returns null for anything that is not a v1 envelope", () => {
    const cipher = createTokenCipher([{ id: "k1", key: key() }]);
    expect(cipher.keyIdOf(SECRET)).toBeNull();
    expect(cipher.keyIdOf("v1.bad id.a.b.c")).toBeNull();
  });

  it("copies keys so later changes to the caller's buffer do not affect it", () => {
    const k = key();
    const cipher = createTokenCipher([{ id: "k1", key: k }]);
    const env = cipher.encrypt(SECRET, USER);
    k.fill(0);
    expect(cipher.decrypt(env, USER)).toBe(SECRET);
  });

  it.each([
    ["no keys", [], /at least one key/],
    ["a short key", [{ id: "k1", key: randomBytes(16) }], /must be 32 bytes, got 16/],
    ["a long key", [{ id: "k1", key: randomBytes(33) }], /must be 32 bytes, got 33/],
    ["a key id with a dot", [{ id: "k.1", key: randomBytes(32) }], /invalid id/],
    [
      "duplicate key ids",
      [
        { id: "k1", key: randomBytes(32) },
        { id: "k1", key: randomBytes(32) },
      ],
      /appears twice/,
    ],
  ])("refuses %s", (_name, keys, message) => {
    expect(() => createTokenCipher(keys)).toThrow(ConfigError);
    expect(() => createTokenCipher(keys)).toThrow(message);
  });
});
