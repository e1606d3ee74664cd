/** `cal-tokens status ULID [--json]`: everything about a user's tokens except the tokens. */
import { Argument, type Command } from "commander";
import type { CalTokenStatusReport } from "../../ondemand/types.js";
import { ulidArg } from "../args.js";
import { errLine, line, when, withClient, withContext, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

export function registerStatus(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("status")
    .addArgument(new Argument("<ulid>", "the user's ULID").argParser(ulidArg))
    .option("--json", "print one JSON object")
    .description("show a user's token state (no secrets)")
    .action(async (ulid: string, opts: { json?: boolean }) =>
      done(
        await withContext(deps, (ctx) =>
          withClient(ctx, async (client) => {
            const report = await client.getCalTokenStatus(ulid);
            if (report === null) {
              errLine(ctx.io, `cal-tokens: no tokens stored for ${ulid}`);
              return EXIT.failed;
            }
            line(ctx.io, opts.json ? JSON.stringify(report) : formatStatus(report));
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
