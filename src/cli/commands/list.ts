/**
 * `cal-tokens list [--status S] [--json] [--limit N] [--after ULID]`: rows without secrets, in ULID
 * order. Keyset paging: the next page starts after the last ULID printed (`next`).
 */
import { Option, type Command } from "commander";
import type { CalTokenStatus } from "../../core/types.js";
import type { PrismaClient } from "../../store/prisma.js";
import { positiveIntArg, statusArg, STATUSES, ulidArg } from "../args.js";
import { errLine, line, when, withContext, withPrisma, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

interface ListOptions {
  status?: CalTokenStatus;
  json?: boolean;
  limit: number;
  after?: string;
}

/** The selected columns; the encrypted ones are never read. */
const SELECT = {
  userUlid: true,
  kind: true,
  status: true,
  calUserId: true,
  accessTokenExpiresAt: true,
  refreshTokenExpiresAt: true,
  nextRefreshAt: true,
  failureCount: true,
  lastFailureCode: true,
} as const;

export function registerList(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("list")
    .addOption(new Option("--status <status>", `only rows in this status (${STATUSES.join(", ")})`).argParser(statusArg))
    .option("--json", 'print {"rows": [...], "next": ULID | null}')
    .addOption(new Option("--limit <n>", "at most this many rows").argParser(positiveIntArg(10_000)).default(100))
    .addOption(new Option("--after <ulid>", "start after this ULID (the previous page's next)").argParser(ulidArg))
    .description("list stored users (no secrets): ulid, kind, status, expiry, next refresh, failures")
    .action(async (opts: ListOptions) =>
      done(
        await withContext(deps, (ctx) =>
          withPrisma(ctx, async (prisma) => {
            const { rows, next } = await listPage(prisma, opts);
            if (opts.json) {
              line(ctx.io, JSON.stringify({ rows, next }));
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

type Row = Awaited<ReturnType<typeof listPage>>["rows"][number];

async function listPage(prisma: PrismaClient, opts: ListOptions) {
  // One extra row tells whether there is a next page.
  const found = await prisma.calToken.findMany({
    where: { ...(opts.status ? { status: opts.status } : {}), ...(opts.after ? { userUlid: { gt: opts.after } } : {}) },
    orderBy: { userUlid: "asc" },
    take: opts.limit + 1,
    select: SELECT,
  });
  const rows = found.slice(0, opts.limit);
  return { rows, next: found.length > opts.limit ? (rows.at(-1)?.userUlid ?? null) : null };
}

function formatTable(rows: Row[]): string {
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
  const widths = header.map((_, i) => Math.max(...all.map((cells) => cells[i]!.length)));
  const text = all.map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
  return rows.length === 0 ? `${text}\n(no rows)` : text;
}
