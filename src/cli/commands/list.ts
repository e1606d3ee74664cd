/**
 * `cal-tokens list [--status S] [--json] [--limit N] [--after ULID]`: rows without secrets, in ULID
 * order; needs only DATABASE_URL. Keyset paging: the next page starts after the last ULID printed
 * (`next`).
 */
import { Option, type Command } from "commander";
import type { CalTokenStatus } from "../../core/types.js";
import { findTokenListPage, type TokenListRow } from "../../store/token-list.js";
import { positiveIntArg, statusArg, STATUSES, ulidArg } from "../args.js";
import { errLine, jsonLine, line, when, withDatabaseContext, withPrisma, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

interface ListOptions {
  status?: CalTokenStatus;
  json?: boolean;
  limit: number;
  after?: string;
}

export function registerList(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("list")
    .addOption(new Option("--status <status>", `only rows in this status (${STATUSES.join(", ")})`).argParser(statusArg))
    .option("--json", 'print one JSON object: {"rows": [...], "next": ULID | null}')
    .addOption(new Option("--limit <n>", "at most this many rows").argParser(positiveIntArg(10_000)).default(100))
    .addOption(new Option("--after <ulid>", "start after this ULID (the previous page's next)").argParser(ulidArg))
    .description("list stored users (no secrets; needs only DATABASE_URL): ulid, kind, status, expiry, next refresh, failures")
    .action(async (opts: ListOptions) =>
      done(
        await withDatabaseContext(deps, { json: opts.json === true }, (ctx) =>
          withPrisma(ctx, async (prisma) => {
            const { rows, next } = await findTokenListPage(prisma, opts);
            if (ctx.json) {
              jsonLine(ctx.io, { rows, next });
              return EXIT.ok;
            }
            line(ctx.io, formatTable(rows));
            if (next !== null) errLine(ctx.io, `more rows: add --after ${next}`);
            return EXIT.ok;
          }),
        ),
      ),
    );
}

function formatTable(rows: TokenListRow[]): string {
  const header = ["ULID", "KIND", "STATUS", "ACCESS EXPIRES", "NEXT REFRESH", "FAILURES"];
  const body = rows.map((r) => [
    r.userUlid,
    r.kind,
    r.status,
    when(r.accessTokenExpiresAt),
    when(r.nextRefreshAt),
    r.failureCount > 0 ? `${r.failureCount} ${r.lastFailureCode ?? ""}`.trim() : "0",
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((cells) => (cells[i] ?? "").length)));
  const text = all.map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")).join("\n");
  return rows.length === 0 ? `${text}\n(no rows)` : text;
}
