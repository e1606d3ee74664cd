/** `saveCalTokens` input validation: size cap, dates, and the managed-without-calUserId flag. */
import { isAppError } from "../../src/core/errors.js";
import { checkSaveInput, MAX_TOKEN_BYTES, parseSaveInput } from "../../src/ondemand/save-input.js";
import type { SaveCalTokensInput } from "../../src/ondemand/types.js";

const ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const AT = "at_secret_value_0123456789";
const RT = "rt_secret_value_0123456789";
const base: SaveCalTokensInput = {
  userUlid: ULID,
  accessToken: AT,
  refreshToken: RT,
  accessTokenExpiresAt: 1_900_000_000_000,
  calUserId: 7,
};

function problemOf(input: unknown): string {
  try {
    parseSaveInput(input as SaveCalTokensInput);
  } catch (err) {
    if (!isAppError(err)) throw err;
    expect(err.code).toBe("input.invalid");
    expect(err.message).not.toContain("secret_value");
    return err.message.replace(/^saveCalTokens: invalid input: /, "");
  }
  throw new Error("expected an AppError");
}

describe("parseSaveInput", () => {
  it("canonicalises the ULID and keeps Date or epoch milliseconds", () => {
    const at = new Date("2030-01-01T00:00:00Z");
    const p = parseSaveInput({ ...base, userUlid: ULID.toLowerCase(), accessTokenExpiresAt: at, refreshTokenExpiresAt: 1_950_000_000_000 });
    expect(p).toMatchObject({ userUlid: ULID, kind: "managed", calUserId: 7, missingCalUserId: false });
    expect(p.pair).toEqual({
      accessToken: AT,
      refreshToken: RT,
      accessTokenExpiresAt: at,
      refreshTokenExpiresAt: new Date(1_950_000_000_000),
    });
  });

  it("accepts tokens up to the shared size cap and refuses larger ones", () => {
    expect(MAX_TOKEN_BYTES).toBe(16_384);
    expect(() => parseSaveInput({ ...base, accessToken: "a".repeat(MAX_TOKEN_BYTES) })).not.toThrow();
    expect(problemOf({ ...base, accessToken: "a".repeat(MAX_TOKEN_BYTES + 1) })).toBe("accessToken: must be at most 16 KiB");
    expect(problemOf({ ...base, refreshToken: `${RT}${"b".repeat(MAX_TOKEN_BYTES)}` })).toBe("refreshToken: must be at most 16 KiB");
  });

  it("refuses tokens that could not travel in an HTTP header", () => {
    expect(problemOf({ ...base, accessToken: `${AT}\r\nx: y` })).toMatch(/^accessToken: must be visible ASCII/);
    expect(problemOf({ ...base, refreshToken: `${RT} tail` })).toMatch(/^refreshToken: must be visible ASCII/);
  });

  it("flags a managed user saved without calUserId, and only that", () => {
    const { calUserId: _omitted, ...withoutId } = base;
    expect(parseSaveInput(withoutId)).toMatchObject({ kind: "managed", calUserId: null, missingCalUserId: true });
    expect(parseSaveInput({ ...withoutId, kind: "oauth2" })).toMatchObject({ calUserId: null, missingCalUserId: false });
    expect(parseSaveInput(base).missingCalUserId).toBe(false);
  });

  it.each([
    ["seconds instead of ms", 1_900_000_000, /^accessTokenExpiresAt: epoch milliseconds expected \(this looks like seconds\)$/],
    ["microseconds instead of ms", 1_900_000_000_000_000, /^accessTokenExpiresAt: must be before the year 2286/],
    ["a date string, even with an offset", "2030-01-01T00:00:00Z", /^accessTokenExpiresAt: must be a valid Date or epoch milliseconds$/],
    ["an invalid Date", new Date(Number.NaN), /^accessTokenExpiresAt: must be a valid Date or epoch milliseconds$/],
    ["a Date past the year 2286", new Date(8e15), /^accessTokenExpiresAt: must be before the year 2286/],
  ])("refuses %s as an expiry", (_case, value, problem) => {
    expect(problemOf({ ...base, accessTokenExpiresAt: value })).toMatch(problem);
  });

  it("refuses a calUserId the int4 column cannot hold", () => {
    expect(problemOf({ ...base, calUserId: 2 ** 31 })).toMatch(/^calUserId:/);
  });

  it("checkSaveInput lists every problem by field, without values", () => {
    const res = checkSaveInput({
      userUlid: "nope",
      accessToken: "a".repeat(MAX_TOKEN_BYTES + 1),
      refreshToken: RT,
      accessTokenExpiresAt: 5,
    });
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.problems.map((p) => p.field).sort()).toEqual(["accessToken", "accessTokenExpiresAt", "userUlid"]);
    expect(JSON.stringify(res.problems)).not.toContain("aaaa");
  });
});
