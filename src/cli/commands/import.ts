/**
 * `cal-tokens import [FILE|-] [--json]`: JSON lines of token records from a file or stdin (never
 * argv). Each line is validated and saved on its own; the report names line numbers and problems
 * only. With --json, stdout is JSON lines: one object per record, then a summary (docs/cli.md#json-output).
 */
import { fstatSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { ERROR_CODES, isAppError } from "../../core/errors.js";
import type { CalTokenClient } from "../../wiring/cal-token-client.js";
import { errLine, jsonLine, line, withClient, withContext, type CliContext, type CliDeps } from "../context.js";
import { toFailure } from "../failures.js";
import { parseImportLine } from "../import-record.js";
import { EXIT, type CliIo } from "../io.js";
import { createProgress } from "../progress.js";

interface ImportFlags {
  overwrite: boolean;
  allowMissingCalUserId: boolean;
}

type Outcome = "imported" | "kept" | "invalid" | "failed";
type Tally = Record<Outcome, number>;

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
    .option("--json", "print JSON lines: one object per record, then a summary (docs/cli.md#json-output)")
    .action(async (file: string, opts: { overwrite?: boolean; allowMissingCalUserId?: boolean; json?: boolean }) => {
      const flags = { overwrite: opts.overwrite === true, allowMissingCalUserId: opts.allowMissingCalUserId === true };
      done(await runImport(deps, file, flags, opts.json === true));
    });
}

async function runImport(deps: CliDeps, file: string, flags: ImportFlags, json: boolean): Promise<number> {
  const { io } = deps;
  let handle: FileHandle | null = null;
  if (file !== "-") {
    try {
      handle = await open(file, "r");
    } catch (err) {
      errLine(io, `cal-tokens: cannot read ${file}: ${(err as { code?: string }).code ?? "error"}`);
      if (json) jsonLine(io, { error: { code: ERROR_CODES.invalidInput, message: `cannot read ${file}` } });
      return EXIT.usage;
    }
  } else if ((io.stdin as { isTTY?: boolean }).isTTY) {
    errLine(io, "reading token records from stdin (one JSON object per line; end with Ctrl-D)");
  }
  try {
    const size = handle ? (await handle.stat()).size : stdinFileSize(io);
    return await withContext(deps, { json }, (ctx) =>
      withClient(ctx, (client) => importLines(ctx, client, inputLines(io, handle), size, flags)),
    );
  } finally {
    await handle?.close().catch(() => undefined); // readLines may have closed it already
  }
}

async function importLines(ctx: CliContext, client: CalTokenClient, lines: AsyncIterable<string>, size: number | null, flags: ImportFlags) {
  const tally: Tally = { imported: 0, kept: 0, invalid: 0, failed: 0 };
  const progress = createProgress(ctx.io.stderr, { label: "import", unit: "records", total: size, now: () => ctx.clock().getTime() });
  let lineNo = 0;
  let bytes = 0;
  for await (const raw of lines) {
    lineNo += 1;
    bytes += Buffer.byteLength(raw, "utf8") + 1;
    const text = lineNo === 1 ? raw.replace(/^\uFEFF/, "") : raw;
    if (text.trim() === "") continue;
    const outcome = await importOne(ctx, client, lineNo, text, flags);
    tally[outcome] += 1;
    progress.tick(1, bytes);
  }
  progress.done();
  if (ctx.json) jsonLine(ctx.io, { summary: tally });
  else line(ctx.io, `imported ${tally.imported}, already stored ${tally.kept}, invalid ${tally.invalid}, not stored ${tally.failed}`);
  if (tally.imported + tally.kept + tally.invalid + tally.failed === 0) errLine(ctx.io, "cal-tokens: no token records in the input");
  return tally.invalid + tally.failed > 0 ? EXIT.failed : EXIT.ok;
}

/** Validates and saves one line; reports it (stdout, or stderr for a problem; one JSON line with --json). */
async function importOne(ctx: CliContext, client: CalTokenClient, lineNo: number, text: string, flags: ImportFlags): Promise<Outcome> {
  const parsed = parseImportLine(text, { allowMissingCalUserId: flags.allowMissingCalUserId });
  if (!parsed.ok) {
    if (ctx.json) jsonLine(ctx.io, { line: lineNo, result: "invalid", problem: parsed.problem });
    else errLine(ctx.io, `line ${lineNo}: invalid: ${parsed.problem}`);
    return "invalid";
  }
  const { userUlid } = parsed;
  try {
    await client.saveCalTokens(parsed.input, { ifAbsent: !flags.overwrite });
    if (ctx.json)
      jsonLine(ctx.io, { line: lineNo, result: "imported", userUlid, ...(parsed.missingCalUserId ? { missingCalUserId: true } : {}) });
    else line(ctx.io, `line ${lineNo}: imported ${userUlid}${parsed.missingCalUserId ? " (no calUserId: cannot be force-refreshed)" : ""}`);
    return "imported";
  } catch (err) {
    if (isAppError(err) && err.code === ERROR_CODES.exists) {
      if (ctx.json) jsonLine(ctx.io, { line: lineNo, result: "kept", userUlid });
      else line(ctx.io, `line ${lineNo}: already stored, kept ${userUlid} (use --overwrite to replace)`);
      return "kept";
    }
    const failure = toFailure(err, null);
    if (ctx.json) jsonLine(ctx.io, { line: lineNo, result: "failed", userUlid, code: failure.code, problem: failure.message });
    else errLine(ctx.io, `line ${lineNo}: not stored (${userUlid}): ${failure.message}`);
    return "failed";
  }
}

/** The lines of the file, or of stdin when no file was given. */
function inputLines(io: CliIo, handle: FileHandle | null): AsyncIterable<string> {
  return handle ? handle.readLines({ encoding: "utf8" }) : createInterface({ input: io.stdin, crlfDelay: Infinity });
}

/** The size of stdin when it is a redirected file (`import < tokens.jsonl`), for the progress ETA. */
function stdinFileSize(io: CliIo): number | null {
  const fd = (io.stdin as { fd?: unknown }).fd;
  if (fd !== 0) return null;
  try {
    const st = fstatSync(0);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}
