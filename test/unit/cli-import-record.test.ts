/** `cal-tokens import` line parsing and the usage paths that need no database. */
import { captureIo } from "../../src/cli/io.js";
import { parseImportLine } from "../../src/cli/import-record.js";
import { runCli } from "../../src/cli/program.js";
import { MAX_TOKEN_BYTES } from "../../src/ondemand/save-input.js";

const ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const AT = "at_secret_value_0123456789";
const RT = "rt_secret_value_0123456789";
const base = { userUlid: ULID, accessToken: AT, refreshToken: RT, accessTokenExpiresAt: 1_900_000_000_000, calUserId: 42 };

describe("parseImportLine", () => {
  it("accepts epoch milliseconds and ISO dates", () => {
    const ms = parseImportLine(JSON.stringify(base));
    expect(ms).toMatchObject({ ok: true, userUlid: ULID });
    const iso = parseImportLine(
      JSON.stringify({
        ...base,
        userUlid: ULID.toLowerCase(),
        accessTokenExpiresAt: "2030-03-17T17:46:40Z",
        refreshTokenExpiresAt: "2031-01-01T02:00:00+02:00",
      }),
    );
    expect(iso).toMatchObject({ ok: true, userUlid: ULID });
    if (iso.ok) {
      expect(iso.input.accessTokenExpiresAt).toEqual(new Date("2030-03-17T17:46:40Z"));
      expect(iso.input.refreshTokenExpiresAt).toEqual(new Date("2031-01-01T00:00:00Z"));
    }
  });

  it.each([
    ["2026-11-28T10:00:00.250Z", "2026-11-28T10:00:00.250Z"],
    ["2026-11-28T10:00:00-05:30", "2026-11-28T15:30:00.000Z"],
    ["2026-11-28T10:00:00+0100", "2026-11-28T09:00:00.000Z"],
    ["2026-11-28 10:00Z", "2026-11-28T10:00:00.000Z"],
    ["2026-11-28T10:00:00.123456789+00:00", "2026-11-28T10:00:00.123Z"],
  ])("reads %s as the same instant on every host", (text, iso) => {
    const res = parseImportLine(JSON.stringify({ ...base, accessTokenExpiresAt: text }));
    expect(res.ok && (res.input.accessTokenExpiresAt as Date).toISOString()).toBe(iso);
  });

  it("canonicalises the ULID (upper case) in the record it returns, not only in the report", () => {
    const res = parseImportLine(JSON.stringify({ ...base, userUlid: ULID.toLowerCase() }));
    expect(res.ok && res.input.userUlid).toBe(ULID);
    expect(res.ok && res.userUlid).toBe(ULID);
  });

  it("accepts a token of exactly the size cap, refuses one byte more (either token)", () => {
    expect(MAX_TOKEN_BYTES).toBe(16 * 1024);
    const at = "a".repeat(MAX_TOKEN_BYTES);
    expect(parseImportLine(JSON.stringify({ ...base, accessToken: at })).ok).toBe(true);
    for (const field of ["accessToken", "refreshToken"]) {
      const res = parseImportLine(JSON.stringify({ ...base, [field]: `${at}b` }));
      expect(res).toEqual({ ok: false, problem: `${field}: must be at most 16 KiB` });
    }
  });

  it("refuses a managed user without calUserId unless the operator allows it, and says so", () => {
    const { calUserId: _omitted, ...withoutId } = base;
    for (const record of [withoutId, { ...withoutId, kind: "managed" }, { ...withoutId, calUserId: null }]) {
      const res = parseImportLine(JSON.stringify(record));
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.problem).toMatch(/^calUserId: required for a managed user .*--allow-missing-cal-user-id/);
    }
    const allowed = parseImportLine(JSON.stringify(withoutId), { allowMissingCalUserId: true });
    expect(allowed).toMatchObject({ ok: true, missingCalUserId: true });
    if (allowed.ok) expect(allowed.input).not.toHaveProperty("calUserId");
    // An OAuth 2.0 user is refreshed with its own grant; it has no force-refresh to lose.
    expect(parseImportLine(JSON.stringify({ ...withoutId, kind: "oauth2" }))).toMatchObject({ ok: true, missingCalUserId: false });
    expect(parseImportLine(JSON.stringify(base))).toMatchObject({ ok: true, missingCalUserId: false });
  });

  it.each([
    ["broken JSON", `{"accessToken": "${AT}", oops}`, /^not valid JSON$/],
    ["not an object", `["${AT}"]`, /must be a JSON object/],
    ["bad ULID", JSON.stringify({ ...base, userUlid: "x" }), /userUlid: must be a 26-character ULID/],
    [
      "seconds, not ms",
      JSON.stringify({ ...base, accessTokenExpiresAt: 1_900_000_000 }),
      /accessTokenExpiresAt: epoch milliseconds expected/,
    ],
    [
      "junk date",
      JSON.stringify({ ...base, accessTokenExpiresAt: "next tuesday" }),
      /^accessTokenExpiresAt: must be epoch milliseconds or an ISO 8601 date with an offset$/,
    ],
    [
      "ISO date-time without an offset (the host's time zone would decide)",
      JSON.stringify({ ...base, accessTokenExpiresAt: "2026-11-28T10:00:00" }),
      /^accessTokenExpiresAt: an ISO 8601 date needs a time and an offset \(Z or ±hh:mm\)/,
    ],
    [
      "ISO date without a time",
      JSON.stringify({ ...base, refreshTokenExpiresAt: "2031-01-01" }),
      /^refreshTokenExpiresAt: an ISO 8601 date needs a time and an offset/,
    ],
    [
      "a day that does not exist",
      JSON.stringify({ ...base, accessTokenExpiresAt: "2026-02-30T10:00:00Z" }),
      /^accessTokenExpiresAt: .*does not exist/,
    ],
    [
      "microseconds, not ms",
      JSON.stringify({ ...base, accessTokenExpiresAt: 1_900_000_000_000_000 }),
      /^accessTokenExpiresAt: must be before the year 2286/,
    ],
    [
      "token over the size cap",
      JSON.stringify({ ...base, refreshToken: `${RT}${"x".repeat(16 * 1024)}` }),
      /^refreshToken: must be at most 16 KiB$/,
    ],
    ["token with a line break", JSON.stringify({ ...base, accessToken: `${AT}\r\nX-Evil: 1` }), /^accessToken: must be visible ASCII/],
    ["calUserId not an int4", JSON.stringify({ ...base, calUserId: 2 ** 31 }), /^calUserId:/],
    ["misspelt field", JSON.stringify({ ...base, calUserID: 42 }), /^record: 1 unknown field\(s\); allowed: userUlid, /],
    ["a token where a field name should be", JSON.stringify({ ...base, [AT]: 1 }), /^record: 1 unknown field/],
    ["line over the cap", JSON.stringify({ ...base, accessToken: "a".repeat(100_000) }), /^longer than 80 KiB/],
    ["missing token", JSON.stringify({ ...base, refreshToken: undefined }), /refreshToken/],
    ["bad kind", JSON.stringify({ ...base, kind: AT }), /kind/],
  ])("%s: names the problem without any value", (_name, text, problem) => {
    const res = parseImportLine(text);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.problem).toMatch(problem);
    expect(res.problem).not.toContain(AT);
    expect(res.problem).not.toContain("secret_value");
  });
});

describe("usage without a database", () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const io = captureIo({ env });
    const code = await runCli(args, { io });
    return { code, out: io.out(), err: io.err() };
  };

  it("exit 2 for unknown commands, bad arguments and a bad configuration", async () => {
    expect((await run(["nope"])).code).toBe(2);
    expect((await run([])).code).toBe(2);
    expect((await run(["status", "123"])).code).toBe(2);
    expect((await run(["refresh", ULID, "--timeout", "-5"])).code).toBe(2);
    expect((await run(["list", "--status", "BROKEN"])).code).toBe(2);
    // The bad DATABASE_URL is the first line, on its own; every other problem follows.
    const bad = await run(["import", "-"], { DATABASE_URL: "mysql://x", CAL_CLIENT_ID: "id" });
    expect(bad.code).toBe(2);
    expect(bad.err.split("\n")[0]).toBe("cal-tokens: DATABASE_URL must be a postgres:// or postgresql:// URL (it starts with mysql://)");
    expect(bad.err).toMatch(/also invalid:[\s\S]*TOKEN_ENCRYPTION_KEYS/);
  });

  it("a read-only command names only DATABASE_URL: it needs nothing else", async () => {
    const bad = await run(["status", ULID], { DATABASE_URL: "mysql://x" });
    expect(bad).toEqual({
      code: 2,
      out: "",
      err: "cal-tokens: DATABASE_URL must be a postgres:// or postgresql:// URL (it starts with mysql://)\n",
    });
  });

  it("help is exit 0 on stdout", async () => {
    const res = await run(["help", "import"]);
    expect(res.code).toBe(0);
    expect(res.out).toContain("Usage: cal-tokens import");
    expect(res.out).toContain("--allow-missing-cal-user-id");
  });
});
