/**
 * `cal-tokens status ULID [--json]`: everything about a user's tokens except the tokens. Reads the
 * row's metadata only (the encrypted columns are not selected), so DATABASE_URL is all it needs.
 */
import { Argument, type Command } from "commander";
import { ERROR_CODES } from "../../core/errors.js";
import type { CalTokenStatusReport } from "../../ondemand/types.js";
import { toStatusReport } from "../../ondemand/token-status.js";
import { META_SELECT, toMeta } from "../../store/rows.js";
import { ulidArg } from "../args.js";
import { jsonLine, line, when, withDatabaseContext, withPrisma, type CliDeps } from "../context.js";
import { CliFailure } from "../failures.js";
import { EXIT } from "../io.js";

export function registerStatus(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("status")
    .addArgument(new Argument("<ulid>", "the user's ULID").argParser(ulidArg))
    .option("--json", "print one JSON object (docs/cli.md#json-output)")
    .description("show a user's token state (no secrets; needs only DATABASE_URL)")
    .action(async (ulid: string, opts: { json?: boolean }) =>
      done(
        await withDatabaseContext(deps, { json: opts.json === true }, (ctx) =>
          withPrisma(ctx, async (prisma) => {
            const row = await prisma.calToken.findUnique({ where: { userUlid: ulid }, select: META_SELECT });
            if (row === null) throw new CliFailure(ERROR_CODES.notFound, `no tokens stored for ${ulid}`, EXIT.failed);
            const report = toStatusReport(toMeta(row), ctx.clock());
            if (ctx.json) jsonLine(ctx.io, report);
            else line(ctx.io, formatStatus(report));
            return EXIT.ok;
          }),
        ),
      ),
    );
}

export function formatStatus(r: CalTokenStatusReport): string {
  const rows: [string, string][] = [
    ["user", r.userUlid],
    ["kind", r.kind],
    ["status", r.status],
    ["cal user id", r.calUserId === null ? "-" : String(r.calUserId)],
    ["access token expires", when(r.accessTokenExpiresAt)],
    ["refresh token expires", when(r.refreshTokenExpiresAt)],
    ["next refresh", when(r.nextRefreshAt)],
    ["last refreshed", when(r.lastRefreshedAt)],
    ["last used", when(r.lastUsedAt)],
    ["failures", String(r.failureCount)],
    ["last failure", r.lastFailureAt === null ? "-" : `${when(r.lastFailureAt)} ${r.lastFailureCode ?? ""}`.trim()],
    ["rotation uncertain", r.rotationUncertain ? "yes" : "no"],
    ["refresh in progress", r.refreshInProgress ? "yes" : "no"],
    ["version", String(r.version)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
