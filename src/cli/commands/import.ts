/**
 * `cal-tokens import [FILE|-]`: JSON lines of token records from a file or stdin (never argv).
 * Each line is validated and saved on its own; the report names line numbers and problems only.
 */
import { open, type FileHandle } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { errLine, line, withClient, withContext, describeError, type CliDeps } from "../context.js";
import { parseImportLine } from "../import-record.js";
import { EXIT, type CliIo } from "../io.js";
import { ERROR_CODES, isAppError } from "../../core/errors.js";

export function registerImport(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("import")
    .argument("[file]", 'JSON lines of token records; "-" or nothing reads stdin', "-")
    .description("store token records (one JSON object per line: userUlid, accessToken, refreshToken, accessTokenExpiresAt, …)")
    .option(
      "--overwrite",
      "replace tokens already stored for a user (default: keep them; re-running a file must not roll rotated tokens back)",
    )
    .option(
      "--allow-missing-cal-user-id",
      "import managed users without calUserId (default: refuse them; without it a lost refresh token cannot be force-refreshed)",
    )
    .action(async (file: string, opts: { overwrite?: boolean; allowMissingCalUserId?: boolean }) =>
      done(await runImport(deps, file, { overwrite: opts.overwrite === true, allowMissingCalUserId: opts.allowMissingCalUserId === true })),
    );
}

interface ImportFlags {
  overwrite: boolean;
  allowMissingCalUserId: boolean;
}

async function runImport(deps: CliDeps, file: string, flags: ImportFlags): Promise<number> {
  const { io } = deps;
  let handle: FileHandle | null = null;
  if (file !== "-") {
    try {
      handle = await open(file, "r");
    } catch (err) {
      errLine(io, `cal-tokens: cannot read ${file}: ${(err as { code?: string }).code ?? "error"}`);
      return EXIT.usage;
    }
  } else if ((io.stdin as { isTTY?: boolean }).isTTY) {
    errLine(io, "reading token records from stdin (one JSON object per line; end with Ctrl-D)");
  }
  try {
    return await withContext(deps, (ctx) =>
      withClient(ctx, async (client) => {
        const tally = { imported: 0, kept: 0, invalid: 0, failed: 0 };
        let lineNo = 0;
        for await (const raw of inputLines(io, handle)) {
          lineNo += 1;
          const text = lineNo === 1 ? raw.replace(/^\uFEFF/, "") : raw;
          if (text.trim() === "") continue;
          const parsed = parseImportLine(text, { allowMissingCalUserId: flags.allowMissingCalUserId });
          if (!parsed.ok) {
            tally.invalid += 1;
            errLine(io, `line ${lineNo}: invalid: ${parsed.problem}`);
            continue;
          }
          try {
            await client.saveCalTokens(parsed.input, { ifAbsent: !flags.overwrite });
            tally.imported += 1;
            line(
              io,
              `line ${lineNo}: imported ${parsed.userUlid}${parsed.missingCalUserId ? " (no calUserId: cannot be force-refreshed)" : ""}`,
            );
          } catch (err) {
            if (isAppError(err) && err.code === ERROR_CODES.exists) {
              tally.kept += 1;
              line(io, `line ${lineNo}: already stored, kept ${parsed.userUlid} (use --overwrite to replace)`);
              continue;
            }
            tally.failed += 1;
            errLine(io, `line ${lineNo}: not stored (${parsed.userUlid}): ${describeError(err)}`);
          }
        }
        line(io, `imported ${tally.imported}, already stored ${tally.kept}, invalid ${tally.invalid}, not stored ${tally.failed}`);
        if (lineNo === 0 || tally.imported + tally.kept + tally.invalid + tally.failed === 0)
          errLine(io, "cal-tokens: no token records in the input");
        return tally.invalid + tally.failed > 0 ? EXIT.failed : EXIT.ok;
      }),
    );
  } finally {
    await handle?.close().catch(() => undefined); // readLines may have closed it already
  }
}

/** The lines of the file, or of stdin when no file was given. */
function inputLines(io: CliIo, handle: FileHandle | null): AsyncIterable<string> {
  return handle ? handle.readLines({ encoding: "utf8" }) : createInterface({ input: io.stdin, crlfDelay: Infinity });
}
