/**
 * `cal-tokens migrate [--json]`: applies prisma/migrations to DATABASE_URL with the offline runner
 * (src/store/migrate.ts; no Prisma engine binary), and says which it applied. Needs only DATABASE_URL.
 */
import type { Command } from "commander";
import { applyMigrations, MIGRATIONS_DIR } from "../../store/migrate.js";
import { jsonLine, line, withDatabaseContext, withPrisma, type CliDeps, type DbContext } from "../context.js";
import { CliFailure, databaseFailure } from "../failures.js";
import { EXIT } from "../io.js";

export function registerMigrate(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("migrate")
    .option("--json", 'print one JSON object: {"applied": [...], "alreadyApplied": [...]}')
    .description("apply the database migrations not applied yet (needs only DATABASE_URL; safe to run again)")
    .action(async (opts: { json?: boolean }) => done(await withDatabaseContext(deps, { json: opts.json === true }, migrate)));
}

async function migrate(ctx: DbContext): Promise<number> {
  // The check connects as every command does (same client settings): the database exists and answers.
  await withPrisma(ctx, async () => undefined, { tables: false });
  let result: { applied: string[]; skipped: string[] };
  try {
    result = await applyMigrations(ctx.databaseUrl, MIGRATIONS_DIR);
  } catch (err) {
    // The runner's own messages name the migration and Postgres's reason (no URL, no value).
    const known = databaseFailure(err, ctx.databaseUrl, false);
    if (known && known.code !== "database.tables_missing" && known.code !== "database.schema_outdated") throw known;
    throw new CliFailure("migration.failed", `migration failed: ${(err as Error).message}`, EXIT.failed, { cause: err });
  }
  const { applied, skipped } = result;
  if (ctx.json) {
    jsonLine(ctx.io, { applied, alreadyApplied: skipped });
    return EXIT.ok;
  }
  for (const name of applied) line(ctx.io, `applied ${name}`);
  line(ctx.io, `migrations: applied ${applied.length}, already applied ${skipped.length}`);
  return EXIT.ok;
}
