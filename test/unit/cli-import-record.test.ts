/** `cal-tokens import` line parsing and the usage paths that need no database. */
import { captureIo } from "../../src/cli/io.js";
import { parseImportLine } from "../../src/cli/import-record.js";
import { runCli } from "../../src/cli/program.js";

const ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const AT = "at_secret_value_0123456789";
const RT = "rt_secret_value_0123456789";
const base = { userUlid: ULID, accessToken: AT, refreshToken: RT, accessTokenExpiresAt: 1_900_000_000_000 };

describe("parseImportLine", () => {
  it("accepts epoch milliseconds and ISO dates", () => {
    const ms = parseImportLine(JSON.stringify(base));
    expect(ms).toMatchObject({ ok: true, userUlid: ULID });
    const iso = parseImportLine(
      JSON.stringify({
        ...base,
        userUlid: ULID.toLowerCase(),
        accessTokenExpiresAt: "2030-03-17T17:46:40Z",
        refreshTokenExpiresAt: "2031-01-01",
      }),
    );
    expect(iso).toMatchObject({ ok: true, userUlid: ULID });
    if (iso.ok) expect(iso.input.accessTokenExpiresAt).toEqual(new Date("2030-03-17T17:46:40Z"));
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
      /^accessTokenExpiresAt: must be epoch milliseconds or an ISO 8601 date$/,
    ],
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
    const bad = await run(["status", ULID], { DATABASE_URL: "mysql://x", CAL_CLIENT_ID: "id" });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/DATABASE_URL[\s\S]*CAL_CLIENT_SECRET[\s\S]*TOKEN_ENCRYPTION_KEYS/);
  });

  it("help is exit 0 on stdout", async () => {
    const res = await run(["help", "import"]);
    expect(res.code).toBe(0);
    expect(res.out).toContain("Usage: cal-tokens import");
  });
});
