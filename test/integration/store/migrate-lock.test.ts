/**
 * Two `release` runs at once: the migration runner takes its advisory lock before any DDL, so the
 * second waits before touching the catalog and every migration is recorded exactly once.
 */
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import pg from "pg";
import { applyMigrations, MIGRATION_LOCK_KEY, MIGRATIONS_DIR } from "../../../src/store/migrate.js";
import { ADMIN_URL, databaseUrlFor, dropTestDatabase } from "../../support/test-db.js";

const names = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const created: string[] = [];

/** An empty database: no `_prisma_migrations`, nothing migrated. */
async function freshDatabase(): Promise<string> {
  const name = `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_mig_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  created.push(name);
  return databaseUrlFor(name);
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

afterAll(async () => {
  for (const name of created) await dropTestDatabase(name);
});

it("waits for the migration lock before any DDL, then completes once it is released", async () => {
  const url = await freshDatabase();
  const holder = await connect(url);
  try {
    await holder.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    const run = applyMigrations(url, MIGRATIONS_DIR);
    run.catch(() => undefined); // awaited below; keeps an early failure from being unhandled meanwhile
    // Wait until the runner's session is queued on the lock (up to 10 s; normally a few ms).
    let waiting = 0;
    for (let i = 0; i < 200 && waiting === 0; i += 1) {
      const r = await holder.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [MIGRATION_LOCK_KEY],
      );
      waiting = Number(r.rows[0]?.n ?? 0);
      if (waiting === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(waiting).toBe(1);
    const table = await holder.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
    expect(table.rows[0]?.t).toBeNull();
    await holder.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    await expect(run).resolves.toEqual({ applied: names, skipped: [] });
  } finally {
    await holder.end();
  }
});

it("two concurrent runs on a fresh database both succeed and record every migration exactly once", async () => {
  const url = await freshDatabase();
  const results = await Promise.all([applyMigrations(url, MIGRATIONS_DIR), applyMigrations(url, MIGRATIONS_DIR)]);
  // The lock serialises them: whoever goes second finds everything applied.
  expect(results.map((r) => r.applied.length).sort()).toEqual([0, names.length]);
  expect(results.flatMap((r) => r.applied).sort()).toEqual(names);
  const client = await connect(url);
  try {
    const rows = await client.query<{ migration_name: string; n: string }>(
      `SELECT migration_name, count(*) AS n FROM "_prisma_migrations" WHERE finished_at IS NOT NULL GROUP BY migration_name ORDER BY migration_name`,
    );
    expect(rows.rows.map((r) => [r.migration_name, Number(r.n)])).toEqual(names.map((n) => [n, 1]));
  } finally {
    await client.end();
  }
});
