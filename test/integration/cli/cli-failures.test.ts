/**
 * Every known failure of `cal-tokens`, reproduced for real (throw-away databases on the local
 * Postgres, a port nobody listens on, a server that accepts and never answers): a plain first line
 * on stderr, the log after it, the documented exit code, no credential anywhere; with --json, an
 * `{"error": …}` document on stdout (docs/cli.md#failures).
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import pg from "pg";
import { captureIo } from "../../../src/cli/io.js";
import { runCli } from "../../../src/cli/program.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { ADMIN_URL, databaseUrlFor } from "../../support/test-db.js";

const DB_PASSWORD = "pw-must-not-show-4d1b";
const REDIS_PASSWORD = "redis-pw-must-not-show-93ac";
const run = `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_${randomBytes(3).toString("hex")}`;
const EMPTY_DB = `${run}_empty`;
const MISSING_DB = `${run}_missing`;
const ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
let h: Harness;
let silent: net.Server;
let silentPort = 0;
const held = new Set<net.Socket>();

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  h = await startHarness();
  await admin(`CREATE DATABASE "${EMPTY_DB}"`); // no tables: never migrated
  silent = net.createServer((socket) => {
    held.add(socket);
    socket.on("close", () => held.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as net.AddressInfo).port;
});
afterAll(async () => {
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await admin(`DROP DATABASE IF EXISTS "${EMPTY_DB}" WITH (FORCE)`);
  await h.close();
});

/** Runs the CLI in-process; checks that no password shows and that the log (JSON) follows the first line. */
async function cli(args: string[], env: Record<string, string>) {
  const io = captureIo({ env });
  const code = await runCli(args, { io });
  const res = { code, out: io.out(), err: io.err() };
  recordForSecretScan(res);
  expect(`${res.out}${res.err}`).not.toContain(DB_PASSWORD);
  expect(`${res.out}${res.err}`).not.toContain(REDIS_PASSWORD);
  const [first = "", ...rest] = res.err.split("\n");
  return { ...res, first, logs: rest.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const withPassword = (url: string) => {
  const u = new URL(url);
  u.username = "postgres";
  u.password = DB_PASSWORD;
  return u.toString();
};
const full = (databaseUrl: string, more: Record<string, string> = {}) => h.env({ DATABASE_URL: databaseUrl, ...more });
const dbOnly = (databaseUrl: string) => ({ DATABASE_URL: databaseUrl });
const at = (port: number) => withPassword(`postgresql://127.0.0.1:${port}/cal_tokens`);

// One row per command: its arguments and the environment it needs (read-only commands: DATABASE_URL alone).
const COMMANDS: [string, string[], (url: string) => Record<string, string>][] = [
  ["list", ["list"], dbOnly],
  ["status", ["status", ULID], dbOnly],
  ["import", ["import", "-"], full],
  ["refresh", ["refresh", ULID], full],
  ["sweep --dry-run", ["sweep", "--dry-run"], full],
  ["rotate-key", ["rotate-key"], full],
];

describe.each(COMMANDS)("%s", (_name, args, env) => {
  it("a database that does not exist: its name, exit 2, the details logged after", async () => {
    const res = await cli(args, env(withPassword(databaseUrlFor(MISSING_DB))));
    expect(res.code).toBe(2);
    expect(res.first).toBe(`cal-tokens: database ${MISSING_DB} does not exist (create it, then run \`cal-tokens migrate\`)`);
    expect(res.logs.at(-1)).toMatchObject({ failure: "database.missing", err: expect.objectContaining({ code: "P1003" }) });
    expect(res.out).toBe("");
  });

  it("a database without tables: run `cal-tokens migrate`, exit 2", async () => {
    const res = await cli(args, env(databaseUrlFor(EMPTY_DB)));
    expect(res.code).toBe(2);
    expect(res.first).toBe("cal-tokens: tables missing: run `cal-tokens migrate`");
    expect(res.logs.at(-1)).toMatchObject({ failure: "database.tables_missing" });
  });

  it("a mysql:// URL: DATABASE_URL must be postgres://, exit 2", async () => {
    const res = await cli(args, env(`mysql://root:${DB_PASSWORD}@127.0.0.1:3306/cal_tokens`));
    expect(res.code).toBe(2);
    expect(res.first).toBe("cal-tokens: DATABASE_URL must be a postgres:// or postgresql:// URL (it starts with mysql://)");
  });

  it("nobody listening: cannot reach the database at host:port, exit 1, no credentials", async () => {
    const res = await cli(args, env(at(1)));
    expect(res.code).toBe(1);
    expect(res.first).toBe("cal-tokens: cannot reach the database at 127.0.0.1:1");
    expect(res.logs.at(-1)).toMatchObject({ failure: "database.unreachable" });
  });
});

it("migrate: a junk URL is exit 2; a missing database exit 2; an unreachable one exit 1", async () => {
  expect((await cli(["migrate"], dbOnly("not a url"))).first).toBe(
    "cal-tokens: DATABASE_URL must be a postgres:// or postgresql:// URL (it is not a URL)",
  );
  const missing = await cli(["migrate"], dbOnly(databaseUrlFor(MISSING_DB)));
  expect(missing).toMatchObject({
    code: 2,
    first: `cal-tokens: database ${MISSING_DB} does not exist (create it, then run \`cal-tokens migrate\`)`,
  });
  expect(await cli(["migrate"], dbOnly(at(1)))).toMatchObject({ code: 1, first: "cal-tokens: cannot reach the database at 127.0.0.1:1" });
});

it("sslmode=require against a server without TLS: the TLS line, exit 2", async () => {
  const res = await cli(["list"], dbOnly(`${h.databaseUrl}?sslmode=require`));
  expect(res).toMatchObject({
    code: 2,
    first: expect.stringMatching(/^cal-tokens: TLS to the database at [^ ]+:\d+ failed \(check sslmode/),
  });
});

it("a server that accepts and never answers: cannot reach, within the connect timeout", async () => {
  for (const args of [["list"], ["migrate"]]) {
    const started = Date.now();
    const res = await cli(args, dbOnly(at(silentPort)));
    expect(res).toMatchObject({ code: 1, first: `cal-tokens: cannot reach the database at 127.0.0.1:${silentPort} (timed out)` });
    expect(Date.now() - started).toBeLessThan(15_000);
  }
}, 40_000);

it("--json: the failure is also one JSON document on stdout", async () => {
  const res = await cli(["list", "--json"], dbOnly(databaseUrlFor(EMPTY_DB)));
  expect(res.code).toBe(2);
  expect(JSON.parse(res.out)).toEqual({ error: { code: "database.tables_missing", message: "tables missing: run `cal-tokens migrate`" } });
  const config = await cli(["import", "--json"], full(h.databaseUrl, { TOKEN_ENCRYPTION_KEYS: "" }));
  expect(config.code).toBe(2);
  expect(JSON.parse(config.out)).toEqual({
    error: { code: "config.invalid", message: "invalid configuration:", details: [expect.stringMatching(/^TOKEN_ENCRYPTION_KEYS: /)] },
  });
});

describe("Redis", () => {
  const noRedis = () => full(h.databaseUrl, { REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:1` });

  it("refresh and sweep need it: Redis not reachable at host:port, exit 1; sweep --dry-run does not", async () => {
    for (const args of [["refresh", ULID], ["sweep"]]) {
      const res = await cli(args, noRedis());
      expect(res.code).toBe(1);
      expect(res.first).toBe("cal-tokens: Redis not reachable at 127.0.0.1:1");
      expect(res.logs.at(-1)).toMatchObject({ failure: "queue.unavailable" });
    }
    expect((await cli(["sweep", "--dry-run"], noRedis())).code).toBe(0);
  });
});

it("migrate applies every migration to an empty database, says which, and then the tables are there", async () => {
  const name = `${run}_fresh`;
  await admin(`CREATE DATABASE "${name}"`);
  try {
    const first = await cli(["migrate"], dbOnly(databaseUrlFor(name)));
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^applied \d+_init\n/);
    const applied = Number(/migrations: applied (\d+), already applied 0\n$/.exec(first.out)?.[1]);
    expect(applied).toBeGreaterThanOrEqual(4);
    const again = await cli(["migrate", "--json"], dbOnly(databaseUrlFor(name)));
    expect(JSON.parse(again.out)).toEqual({ applied: [], alreadyApplied: expect.any(Array) });
    expect((JSON.parse(again.out) as { alreadyApplied: string[] }).alreadyApplied).toHaveLength(applied);
    expect(await cli(["list"], dbOnly(databaseUrlFor(name)))).toMatchObject({ code: 0, err: "" });
  } finally {
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
});
