/**
 * prisma/migrations/20261210000000_refresh_token_expiry: OAuth2 rows written before the refresh-token
 * expiry was stored get one, 30 days from when their pair was issued at the latest (the last write, or
 * the access-token expiry − 1800 s when that is earlier, e.g. an old pair imported); managed rows and
 * rows that have one are left alone; and the at-risk index exists. Run on a database migrated up to the
 * migration before it, then brought up to date the way `release` does.
 */
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { applyMigrations, MIGRATIONS_DIR } from "../../../src/store/migrate.js";
import { ADMIN_URL, databaseUrlFor, dropTestDatabase } from "../../support/test-db.js";

const BACKFILL = "20261210000000_refresh_token_expiry";
const name = `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_rtx_${randomBytes(3).toString("hex")}`;
const before = mkdtempSync(path.join(tmpdir(), "ctw-migrations-"));
let client: pg.Client;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  // The migrations as they were before this one.
  for (const dir of readdirSync(MIGRATIONS_DIR, { withFileTypes: true })) {
    if (dir.isDirectory() && dir.name < BACKFILL)
      cpSync(path.join(MIGRATIONS_DIR, dir.name), path.join(before, dir.name), { recursive: true });
  }
  await applyMigrations(databaseUrlFor(name), before);
  client = new pg.Client({ connectionString: databaseUrlFor(name) });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await dropTestDatabase(name);
  rmSync(before, { recursive: true, force: true });
});

const T = Date.parse("2026-11-20T10:00:00.000Z");
const at = (ms: number) => new Date(T + ms);
const D = 86_400_000;

/** A row as older code wrote it (envelopes are never read here). */
async function insert(
  ulid: string,
  row: { kind: "oauth2" | "managed"; rt: Date | null; access: Date; lastRefreshed: Date | null; updated: Date; created: Date },
) {
  await client.query(
    `INSERT INTO cal_token (user_ulid, kind, access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at,
       next_refresh_at, last_refreshed_at, created_at, updated_at)
     VALUES ($1, $2::"CalTokenKind", 'v1.x.a', 'v1.x.r', $3, $4, $5, $6, $7, $8)`,
    [ulid, row.kind, row.access, row.rt, at(0), row.lastRefreshed, row.created, row.updated],
  );
}

const ID = {
  refreshed: "01HZX3K8V2Q7W9M4T6R5Y0AB01",
  neverRefreshed: "01HZX3K8V2Q7W9M4T6R5Y0AB02",
  oldImport: "01HZX3K8V2Q7W9M4T6R5Y0AB03",
  hasExpiry: "01HZX3K8V2Q7W9M4T6R5Y0AB04",
  managed: "01HZX3K8V2Q7W9M4T6R5Y0AB05",
};

it("backfills OAuth2 rows without an expiry and adds the at-risk index", async () => {
  // Refreshed by us at T (access token 1800 s from the request): T + 30 d.
  await insert(ID.refreshed, {
    kind: "oauth2",
    rt: null,
    access: at(1800_000),
    lastRefreshed: at(0),
    updated: at(5_000),
    created: at(-40 * D),
  });
  // No refresh recorded: the last write (updated_at) counts.
  await insert(ID.neverRefreshed, {
    kind: "oauth2",
    rt: null,
    access: at(3 * 3600_000),
    lastRefreshed: null,
    updated: at(-D),
    created: at(-2 * D),
  });
  // Saved at T, but its access token expired 12 days before: issued 12 days + 1800 s before T.
  await insert(ID.oldImport, { kind: "oauth2", rt: null, access: at(-12 * D), lastRefreshed: at(0), updated: at(0), created: at(0) });
  await insert(ID.hasExpiry, { kind: "oauth2", rt: at(9 * D), access: at(1800_000), lastRefreshed: at(0), updated: at(0), created: at(0) });
  await insert(ID.managed, { kind: "managed", rt: null, access: at(3600_000), lastRefreshed: at(0), updated: at(0), created: at(0) });

  // The backfill first, then any later migration.
  expect((await applyMigrations(databaseUrlFor(name), MIGRATIONS_DIR)).applied[0]).toBe(BACKFILL);

  const rows = await client.query<{ user_ulid: string; rt: Date | null }>(
    `SELECT user_ulid, refresh_token_expires_at AS rt FROM cal_token ORDER BY user_ulid`,
  );
  expect(Object.fromEntries(rows.rows.map((r) => [r.user_ulid, r.rt?.toISOString() ?? null]))).toEqual({
    [ID.refreshed]: at(30 * D).toISOString(),
    [ID.neverRefreshed]: at(-D + 30 * D).toISOString(),
    [ID.oldImport]: at(-12 * D - 1800_000 + 30 * D).toISOString(),
    [ID.hasExpiry]: at(9 * D).toISOString(),
    [ID.managed]: null,
  });
  const index = await client.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE indexname = 'cal_token_rt_expiry_idx'`);
  expect(index.rows[0]?.indexdef).toMatch(/\(status, refresh_token_expires_at\)/);
});
