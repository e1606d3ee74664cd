/** Envelopes the previous release wrote (v1) keep decrypting for the token columns, and nowhere else. */
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { encryptV1 } from "../support/v1-envelope.js";
import { expectDecryptError, flipBit, key, mutate, OTHER, SECRET, USER } from "./token-cipher-helpers.js";

/** Envelopes written by the v1 code of the previous release (key id "legacy", key = 32 × 0x07, USER). */
const LEGACY_KEY = { id: "legacy", key: Buffer.alloc(32, 7) };
const LEGACY_ACCESS = "v1.legacy.S6Q4xzJEYvrCzOAQ.x-5u4ICBmbyA8Bt7SdVLhFwMPlMtLLNn7fOQLFV2Cy-Zi8PcWnKt.IlO2HfrHJbtep85lufqxAA";
const LEGACY_REFRESH = "v1.legacy.iq4AVEWRRa9pZ9RU.zWMGR4yn1D6HGxDHGsy5YvHSKijIC8wYYxlRCW8tQ1ydjkG6FWM.30nNoGFvrJsKcezk3Or8qw";
const LEGACY_REFRESH_PLAIN = "cal_rt_legacy_refresh_token_0123456789";

describe("envelope v1 (written by earlier releases)", () => {
  it("still decrypts envelopes the previous release wrote, for the token columns", () => {
    const cipher = createTokenCipher([{ id: "new", key: key() }, LEGACY_KEY]);
    expect(cipher.decrypt(LEGACY_ACCESS, USER, "access_token")).toBe(SECRET);
    expect(cipher.decrypt(LEGACY_REFRESH, USER.toLowerCase(), "refresh_token")).toBe(LEGACY_REFRESH_PLAIN);
    expect(cipher.keyIdOf(LEGACY_ACCESS)).toBe("legacy");
    expect(LEGACY_ACCESS.startsWith(cipher.currentPrefix)).toBe(false);
  });

  it("the test helper writes the same format as the previous release", () => {
    const cipher = createTokenCipher([LEGACY_KEY]);
    const env = encryptV1(LEGACY_KEY, SECRET, USER);
    expect(env).toMatch(/^v1\.legacy\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(cipher.decrypt(env, USER, "access_token")).toBe(SECRET);
  });

  it("is still bound to the user and authenticated", () => {
    const cipher = createTokenCipher([LEGACY_KEY]);
    expectDecryptError(() => cipher.decrypt(LEGACY_ACCESS, OTHER, "access_token"), LEGACY_ACCESS, /authentication failed.*"legacy"/);
    for (const index of [2, 3, 4]) {
      const env = mutate(LEGACY_ACCESS, index, flipBit);
      expectDecryptError(() => cipher.decrypt(env, USER, "access_token"), env, /authentication failed/);
    }
  });

  it("is never accepted as a held-pair record", () => {
    const cipher = createTokenCipher([LEGACY_KEY]);
    expectDecryptError(
      () => cipher.decrypt(LEGACY_ACCESS, USER, "held_pair"),
      LEGACY_ACCESS,
      /v1 envelope is not accepted for a held pair/,
    );
  });
});
