/**
 * `npm run migrate`: the same as `cal-tokens migrate` (src/cli/commands/migrate.ts): applies
 * prisma/migrations to DATABASE_URL without Prisma's engine binary; arguments pass through (--json).
 */
import { processIo } from "../cli/io.js";
import { runCli } from "../cli/program.js";

await runCli(["migrate", ...process.argv.slice(2)], { io: processIo() });
