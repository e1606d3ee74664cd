import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { pgConnection } from "./pg-tls.js";

/** The advisory lock one migrator holds at a time (two dynos releasing at once). */
export const MIGRATION_LOCK_KEY = 72707369;

/**
 * Applies prisma/migrations/<name>/migration.sql in name order, recording each in `_prisma_migrations`
 * exactly as `prisma migrate deploy` does (same table, sha256 checksum of the file, finished_at,
 * applied_steps_count = 1), so a later `prisma migrate deploy` in production sees them as applied.
 * Needed because Prisma's schema engine binary cannot be downloaded on every machine.
 */
export async function applyMigrations(databaseUrl: string, migrationsDir: string): Promise<{ applied: string[]; skipped: string[] }> {
  const client = new pg.Client(pgConnection(databaseUrl));
  await client.connect();
  try {
    // The lock comes before any DDL, on this session: two concurrent CREATE TABLE IF NOT EXISTS can
    // both miss the table and one then fails on the catalog's unique index.
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      return await applyLocked(client, migrationsDir);
    } finally {
      // Ending the session releases it anyway; unlocking first lets a waiting migrator go at once.
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}

async function applyLocked(client: pg.Client, migrationsDir: string): Promise<{ applied: string[]; skipped: string[] }> {
  // Same DDL Prisma uses, so either tool can own the table.
  await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
  const done = await client.query<{ migration_name: string; checksum: string }>(
    `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const applied = new Map(done.rows.map((r) => [r.migration_name, r.checksum]));
  const names = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const result = { applied: [] as string[], skipped: [] as string[] };
  for (const name of names) {
    const sql = await readFile(path.join(migrationsDir, name, "migration.sql"), "utf8");
    const checksum = createHash("sha256").update(sql).digest("hex");
    const previous = applied.get(name);
    if (previous !== undefined) {
      if (previous !== checksum) throw new Error(`migration ${name} was modified after it was applied`);
      result.skipped.push(name);
      continue;
    }
    await applyOne(client, name, sql, checksum);
    result.applied.push(name);
  }
  return result;
}

async function applyOne(client: pg.Client, name: string, sql: string, checksum: string): Promise<void> {
  const id = randomUUID();
  await client.query("BEGIN");
  try {
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
      [id, checksum, name],
    );
    await client.query(sql);
    await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK");
    throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** prisma/migrations at the package root, from src/store (tsx) or dist/src/store (built). */
export const MIGRATIONS_DIR =
  ["../../prisma/migrations", "../../../prisma/migrations"]
    .map((rel) => path.resolve(import.meta.dirname, rel))
    .find((dir) => existsSync(dir)) ?? path.resolve(import.meta.dirname, "../../prisma/migrations");
