/** `npm run migrate`: applies prisma/migrations to DATABASE_URL without Prisma's engine binary. */
import { loadDatabaseUrl } from "../config/config.js";
import { ConfigError } from "../core/errors.js";
import { applyMigrations, MIGRATIONS_DIR } from "./migrate.js";

let url: string;
try {
  url = loadDatabaseUrl();
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(2);
}
applyMigrations(url, MIGRATIONS_DIR).then(
  (r) => process.stdout.write(`applied: ${r.applied.join(", ") || "none"}; already applied: ${r.skipped.length}\n`),
  (err: unknown) => {
    process.stderr.write(`migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
