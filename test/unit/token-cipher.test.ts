import { createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { AppError, ConfigError, TokenDecryptError } from "../../src/core/errors.js";
import { createTokenCipher, type EnvelopeField } from "../../src/store/token-cipher.js";
import { expectDecryptError, flipBit, key, mutate, one, SECRET, USER, OTHER } from "./token-cipher-helpers.js";

describe("envelope v2", () => {
  it("round-trips and never puts the plaintext in the envelope", () => {
    const cipher = one();
    const env = cipher.encrypt(SECRET, USER, "access_token");
    // v2.<kid>.<salt 16 B>.<iv 12 B>.<ct>.<tag 16 B>, base64url without padding
    expect(env).toMatch(/^v2\.k1\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(env).not.toContain(SECRET);
    expect(env).not.toContain(Buffer.from(SECRET).toString("base64url"));
    expect(cipher.decrypt(env, USER, "access_token")).toBe(SECRET);
    expect(cipher.keyIdOf(env)).toBe("k1");
    expect(cipher.activeKeyId).toBe("k1");
    expect(cipher.currentPrefix).toBe("v2.k1.");
    expect(env.startsWith(cipher.currentPrefix)).toBe(true);
  });

  it("is the documented construction: HKDF-SHA256 subkey per salt, AES-256-GCM, AAD = [version, key id, field, ULID]", () => {
    const master = key();
    const env = createTokenCipher([{ id: "k1", key: master }]).encrypt(SECRET, USER.toLowerCase(), "refresh_token");
    const [, kid, salt, iv, ct, tag] = env.split(".").map((s, i) => (i < 2 ? s : Buffer.from(s, "base64url"))) as [
      string,
      string,
      Buffer,
      Buffer,
      Buffer,
      Buffer,
    ];
    const sub = Buffer.from(hkdfSync("sha256", master, salt, Buffer.from("cal-token-worker/token-envelope/v2"), 32));
    const d = createDecipheriv("aes-256-gcm", sub, iv, { authTagLength: 16 });
    d.setAAD(Buffer.from(JSON.stringify(["v2", kid, "refresh_token", USER])));
    d.setAuthTag(tag);
    expect(Buffer.concat([d.update(ct), d.final()]).toString("utf8")).toBe(SECRET);
  });

  it("draws a fresh salt and IV for every envelope", () => {
    const cipher = one();
    const a = cipher.encrypt(SECRET, USER, "access_token").split(".");
    const b = cipher.encrypt(SECRET, USER, "access_token").split(".");
    expect(a[2]).not.toBe(b[2]); // salt
    expect(a[3]).not.toBe(b[3]); // iv
    expect(a[4]).not.toBe(b[4]); // so the ciphertext differs too
  });

  it("binds the upper-case ULID, so case does not matter but the user does", () => {
    const cipher = one();
    const env = cipher.encrypt(SECRET, USER.toLowerCase(), "access_token");
    expect(cipher.decrypt(env, USER, "access_token")).toBe(SECRET);
    expectDecryptError(() => cipher.decrypt(env, OTHER, "access_token"), env, /authentication failed.*"k1"/);
  });

  it("binds the field: a row's access and refresh envelopes cannot be swapped, and neither passes as a held pair", () => {
    const cipher = one();
    const access = cipher.encrypt(SECRET, USER, "access_token");
    const refresh = cipher.encrypt("cal_rt_x", USER, "refresh_token");
    expectDecryptError(() => cipher.decrypt(access, USER, "refresh_token"), access, /authentication failed/);
    expectDecryptError(() => cipher.decrypt(refresh, USER, "access_token"), refresh, /authentication failed/);
    for (const env of [access, refresh]) expectDecryptError(() => cipher.decrypt(env, USER, "held_pair"), env, /authentication failed/);
    const held = cipher.encrypt(SECRET, USER, "held_pair");
    expectDecryptError(() => cipher.decrypt(held, USER, "access_token"), held, /authentication failed/);
  });

  it("binds the key id: relabelling an envelope with another configured id fails even when both ids share the key", () => {
    const shared = key();
    const cipher = createTokenCipher([
      { id: "a", key: shared },
      { id: "b", key: shared },
    ]);
    const env = mutate(cipher.encrypt(SECRET, USER, "access_token"), 1, () => "b");
    expectDecryptError(() => cipher.decrypt(env, USER, "access_token"), env, /authentication failed \(.*\) \(key id "b"\)/);
  });

  it.each([
    ["salt", 2],
    ["iv", 3],
    ["ciphertext", 4],
    ["tag", 5],
  ])("rejects a tampered %s", (_name, index) => {
    const cipher = one();
    const env = mutate(cipher.encrypt(SECRET, USER, "access_token"), index, flipBit);
    expectDecryptError(() => cipher.decrypt(env, USER, "access_token"), env, /authentication failed \(.*\) \(key id "k1"\)/);
  });

  it("rejects a version relabelled to v1 as not an envelope", () => {
    const cipher = one();
    const env = mutate(cipher.encrypt(SECRET, USER, "access_token"), 0, () => "v1");
    expectDecryptError(() => cipher.decrypt(env, USER, "access_token"), env, /^token decrypt failed: not an envelope$/);
  });

  it("rejects truncated salt, iv and tag by length before trying to decrypt", () => {
    const cipher = one();
    const env = cipher.encrypt(SECRET, USER, "access_token");
    const cases: [number, RegExp][] = [
      [2, /salt must be 16 bytes/],
      [3, /iv must be 12 bytes/],
      [5, /auth tag must be 16 bytes/],
    ];
    for (const [index, reason] of cases) {
      const bad = mutate(env, index, (s) => s.slice(0, 8));
      expectDecryptError(() => cipher.decrypt(bad, USER, "access_token"), bad, reason);
    }
  });

  it("rejects an unknown key id and names it, and a known id with the wrong key material", () => {
    const env = createTokenCipher([{ id: "old", key: key() }]).encrypt(SECRET, USER, "access_token");
    expectDecryptError(
      () => createTokenCipher([{ id: "new", key: key() }]).decrypt(env, USER, "access_token"),
      env,
      /unknown key id \(key id "old"\)/,
    );
    expectDecryptError(
      () => createTokenCipher([{ id: "old", key: key() }]).decrypt(env, USER, "access_token"),
      env,
      /authentication failed/,
    );
  });

  it.each([
    ["plaintext stored by mistake", SECRET],
    ["a JWT-like token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"],
    ["an unknown version", "v3.k1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"],
    ["v2 with too few segments", "v2.k1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAA"],
    ["v1 with too few segments", "v1.k1.AAAAAAAAAAAAAAAA.AAAA"],
    ["a bad key id", "v2.k 1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"],
    ["empty", ""],
  ])("rejects %s without echoing it", (_name, env) => {
    expectDecryptError(() => one().decrypt(env, USER, "access_token"), env, /^token decrypt failed: not an envelope$/);
  });

  it("rejects non-base64url segments", () => {
    const cipher = one();
    const env = mutate(cipher.encrypt(SECRET, USER, "access_token"), 4, (s) => `${s}!`);
    expectDecryptError(() => cipher.decrypt(env, USER, "access_token"), env, /malformed envelope encoding/);
  });

  it("refuses a field it does not know (a programming error, never an unbound envelope)", () => {
    const cipher = one();
    expect(() => cipher.encrypt(SECRET, USER, "token" as EnvelopeField)).toThrow(AppError);
    expect(() => cipher.decrypt(cipher.encrypt(SECRET, USER, "access_token"), USER, "token" as EnvelopeField)).toThrow(
      /unknown envelope field/,
    );
  });
});

describe("keys", () => {
  it("rotation: [new, old] decrypts what [old] wrote and encrypts with new; retiring old makes old envelopes fail loudly", () => {
    const oldKey = { id: "k2024", key: key() };
    const newKey = { id: "k2025", key: key() };
    const legacy = createTokenCipher([oldKey]).encrypt(SECRET, USER, "access_token");
    const during = createTokenCipher([newKey, oldKey]);
    expect(during.decrypt(legacy, USER, "access_token")).toBe(SECRET);
    expect(during.keyIdOf(legacy)).toBe("k2024");
    const fresh = during.encrypt(SECRET, USER, "access_token");
    expect(during.keyIdOf(fresh)).toBe("k2025");
    expect(during.decrypt(fresh, USER, "access_token")).toBe(SECRET);
    expect(() => createTokenCipher([newKey]).decrypt(legacy, USER, "access_token")).toThrow(TokenDecryptError);
  });

  it("keyIdOf returns null for anything that is not an envelope", () => {
    expect(one().keyIdOf(SECRET)).toBeNull();
    expect(one().keyIdOf("v1.bad id.a.b.c")).toBeNull();
  });

  it("copies keys so later changes to the caller's buffer do not affect it", () => {
    const k = key();
    const cipher = createTokenCipher([{ id: "k1", key: k }]);
    const env = cipher.encrypt(SECRET, USER, "held_pair");
    k.fill(0);
    expect(cipher.decrypt(env, USER, "held_pair")).toBe(SECRET);
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
  ])("refuses %s without echoing key material", (_name, keys, message) => {
    expect(() => createTokenCipher(keys)).toThrow(ConfigError);
    expect(() => createTokenCipher(keys)).toThrow(message);
    for (const k of keys) expect(() => createTokenCipher(keys)).not.toThrow(k.key.toString("base64"));
  });
});
