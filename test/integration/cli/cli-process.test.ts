/**
 * The real entry (`node --import tsx src/cli/main.ts`): exit codes and stdout/stderr end to end, a
 * reader that goes away (EPIPE), the version, the first line of a failure, piped stderr.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ulid } from "ulid";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { uniquePrefix } from "../../support/worker-harness.js";

const MAIN = path.resolve(import.meta.dirname, "../../../src/cli/main.ts");
const VERSION = (JSON.parse(readFileSync(path.resolve(import.meta.dirname, "../../../package.json"), "utf8")) as { version: string })
  .version;
/** Enough rows that `list` prints well over a pipe's 64 KiB buffer. */
const MANY = 3_000;
let h: Harness;
let user: SeededUser;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: uniquePrefix() } });
  user = await h.seedManaged();
});
afterAll(async () => {
  await h.close();
});

/**
 * Runs the CLI. `closeStdout`: the reader goes away at once, after the first line, or after the
 * first chunk it received (as `| head -1` does), so later writes meet a closed pipe.
 */
function run(
  args: string[],
  env: Record<string, string>,
  opts: { stdin?: string; closeStdout?: "at-once" | "after-line" | "after-chunk" } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: "pipe",
    });
    let out = "";
    let err = "";
    if (opts.closeStdout === "at-once") child.stdout.destroy();
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (opts.closeStdout === "after-chunk" || (opts.closeStdout === "after-line" && out.includes("\n"))) child.stdout.destroy();
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      const res = { code, out, err };
      recordForSecretScan(res);
      resolve(res);
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

it("status: 0 with the table, 1 for an unknown user, 2 for bad input or config", async () => {
  const ok = await run(["status", user.userUlid], h.env());
  expect(ok.code).toBe(0);
  expect(ok.out).toContain(user.userUlid);
  expect(ok.out).toMatch(/status\s+ACTIVE/);
  expect(ok.err).toBe(""); // logs at warn level only: nothing on a good run
  expect(`${ok.out}${ok.err}`).not.toContain(user.accessToken);

  expect((await run(["status", ulid()], h.env())).code).toBe(1);
  expect((await run(["status", "nope"], h.env())).code).toBe(2);
  const env = h.env();
  delete env.TOKEN_ENCRYPTION_KEYS;
  const bad = await run(["import", "-"], env);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("TOKEN_ENCRYPTION_KEYS");
}, 120_000);

it("import from stdin through the process; stderr piped, so no progress line", async () => {
  const g = h.fake.createManagedUser();
  const userUlid = ulid();
  const rec = JSON.stringify({
    userUlid,
    accessToken: g.accessToken,
    refreshToken: g.refreshToken,
    accessTokenExpiresAt: g.accessTokenExpiresAt,
    calUserId: g.calUserId,
  });
  const res = await run(["import", "-"], h.env(), { stdin: `${rec}\n{"userUlid": 1}\n` });
  expect(res.code).toBe(1);
  expect(res.out).toContain(`line 1: imported ${userUlid}`);
  expect(res.err).toContain("line 2: invalid");
  expect(res.err).not.toContain("\r");
  expect(`${res.out}${res.err}`).not.toContain(g.refreshToken);
}, 120_000);

it("--version prints the package's version", async () => {
  expect(await run(["--version"], {})).toEqual({ code: 0, out: `${VERSION}\n`, err: "" });
}, 60_000);

it("read-only commands and migrate run with DATABASE_URL alone", async () => {
  const env = { DATABASE_URL: h.databaseUrl };
  expect(await run(["status", user.userUlid, "--json"], env)).toMatchObject({
    code: 0,
    out: expect.stringContaining('"status":"ACTIVE"'),
    err: "",
  });
  expect(await run(["list"], env)).toMatchObject({ code: 0, out: expect.stringContaining(user.userUlid), err: "" });
  expect(await run(["migrate"], env)).toMatchObject({
    code: 0,
    out: expect.stringMatching(/^migrations: applied 0, already applied \d+\n$/),
  });
}, 120_000);

it("a known failure: the plain line first, no stack before it, the documented exit code", async () => {
  const missing = new URL(h.databaseUrl);
  missing.pathname = "/cal_tokens_never_created";
  const res = await run(["list"], { DATABASE_URL: missing.toString() });
  expect(res.code).toBe(2);
  expect(res.err.split("\n")[0]).toBe(
    "cal-tokens: database cal_tokens_never_created does not exist (create it, then run `cal-tokens migrate`)",
  );
  expect(JSON.parse(res.err.split("\n")[1] ?? "")).toMatchObject({ failure: "database.missing" });
  expect(await run(["migrate"], { DATABASE_URL: "mysql://root@127.0.0.1/cal_tokens" })).toEqual({
    code: 2,
    out: "",
    err: "cal-tokens: DATABASE_URL must be a postgres:// or postgresql:// URL (it starts with mysql://)\n",
  });
}, 120_000);

describe("a reader that goes away (EPIPE) is a clean exit: no stack trace, exit 0", () => {
  beforeAll(async () => {
    // Metadata rows for `list` to print (never decrypted, never swept: the test's own database).
    await h.db.$executeRaw`
      INSERT INTO cal_token (user_ulid, kind, access_token_enc, refresh_token_enc, access_token_expires_at, status, version,
        next_refresh_at, created_at, updated_at)
      SELECT '01J' || lpad(upper(to_hex(g)), 23, '0'), 'managed', 'v2.none.x', 'v2.none.y', now() + interval '1 hour',
        'RECONNECT_REQUIRED', 1, now() + interval '1 hour', now(), now()
      FROM generate_series(1, ${MANY}::int) g`;
  });

  it("cal-tokens --help | (reader gone before the first byte)", async () => {
    expect(await run(["--help"], {}, { closeStdout: "at-once" })).toEqual({ code: 0, out: "", err: "" });
  }, 60_000);

  it("cal-tokens list | head -1", async () => {
    const res = await run(["list", "--limit", String(MANY + 10)], { DATABASE_URL: h.databaseUrl }, { closeStdout: "after-line" });
    expect(res.out).toMatch(/^ULID\s+KIND/);
    expect(res.out.length).toBeLessThan(MANY * 100); // it did stop before the end
    expect({ code: res.code, err: res.err }).toEqual({ code: 0, err: "" });
  }, 60_000);

  it("cal-tokens list --json | head -c …", async () => {
    const res = await run(
      ["list", "--json", "--limit", String(MANY + 10)],
      { DATABASE_URL: h.databaseUrl },
      { closeStdout: "after-chunk" },
    );
    expect(res.out).toMatch(/^\{"rows":\[/);
    expect({ code: res.code, err: res.err }).toEqual({ code: 0, err: "" });
  }, 60_000);
});
