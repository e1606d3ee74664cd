/**
 * `npx tsx scripts/soak/run.ts [--users 2000] [--minutes 10] [--short] [--rps 200] [--write] [--out FILE] [--keep] [--from FILE]`
 * (`npm run soak`): the chaos soak. Prints a Markdown report on stdout (progress on stderr), writes it
 * to a file (and to docs/soak-report.md with --write). Exit 0 when the pass rule holds, 1 when it
 * does not, 2 when the soak itself could not run. Needs PostgreSQL on 127.0.0.1:5432 (or
 * TEST_PG_ADMIN_URL) and `redis-server` on the PATH; it starts its own Redis and never touches the
 * shared one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { analyse } from "./analyse.js";
import { parseArgs, USAGE, type CliArgs } from "./options.js";
import { renderReport } from "./report.js";
import { runSoak, type SoakResult } from "./soak.js";

const progress = (text: string) => process.stderr.write(`soak: ${text}\n`);
const DOCS_REPORT = path.resolve(import.meta.dirname, "../../docs/soak-report.md");

async function main(): Promise<number> {
  let args: CliArgs;
  try {
    if (process.argv.includes("--help") || process.argv.includes("-h")) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.from) {
    // Judge and print a kept run again (result.json from a run with --keep).
    const kept = JSON.parse(readFileSync(args.from, "utf8")) as SoakResult & { startedAt: string };
    const result: SoakResult = { ...kept, startedAt: new Date(kept.startedAt), stalls: kept.stalls ?? [] };
    const analysis = analyse(result);
    const report = renderReport(result, analysis);
    process.stdout.write(report);
    if (args.write) writeFileSync(DOCS_REPORT, report);
    return analysis.passed ? 0 : 1;
  }
  const abort = new AbortController();
  const stop = (signal: string) => {
    if (abort.signal.aborted) return;
    progress(`${signal}: stopping and cleaning up`);
    abort.abort();
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));

  const result = await runSoak(args.options, { progress, secretScan: true, keepArtifacts: args.keepArtifacts, signal: abort.signal });
  const analysis = analyse(result);
  const report = renderReport(result, analysis);
  process.stdout.write(report);
  const file = args.out ?? path.join(args.keepArtifacts ? result.logDir : path.dirname(result.logDir), `soak-report-${result.t0}.md`);
  writeFileSync(file, report);
  progress(`report written to ${file}`);
  if (args.write) {
    writeFileSync(DOCS_REPORT, report);
    progress(`report written to ${DOCS_REPORT}`);
  }
  return analysis.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
