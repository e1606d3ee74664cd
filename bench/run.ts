/**
 * `npm run bench [-- --only <name>[,<name>…]] [-- --json]`
 *
 * Creates its own database (`bench_<pid>`, dropped at the end, also on error or Ctrl-C), starts the
 * fake Cal.com in-process, runs every section of bench/sections.ts (or the `--only` ones) one after
 * the other and prints a Markdown report on stdout (progress goes to stderr). Goals are
 * informational: a MISS does not change the exit code; a section that throws does (exit 1).
 */
import { performance } from "node:perf_hooks";
import { currentLoad, jsonLine, machineLine, renderSection, type SectionReport } from "./lib/report.js";
import { startBenchRun, type BenchRun } from "./lib/setup.js";
import type { Section } from "./lib/types.js";
import { sections } from "./sections.js";

/** Hard stop, far above the expected run time, so a hung section cannot leak its database. */
const WATCHDOG_MS = 10 * 60_000;

interface Args {
  only: string[] | null;
  json: boolean;
}

function usage(): string {
  return ["usage: npm run bench -- [--only <name>[,<name>…]] [--json]", `sections: ${sections.map((s) => s.name).join(", ")}`].join("\n");
}

function parseArgs(argv: string[]): Args {
  const args: Args = { only: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--json") args.json = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!value) throw new Error("--only needs a section name");
      args.only = [
        ...(args.only ?? []),
        ...value
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ];
    } else if (a === "--help" || a === "-h") {
      process.stdout.write(`${usage()}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

function select(only: string[] | null): Section[] {
  if (only === null) return sections;
  const unknown = only.filter((n) => !sections.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown section(s): ${unknown.join(", ")}`);
  return sections.filter((s) => only.includes(s.name));
}

const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);

async function main(): Promise<number> {
  let args: Args;
  let chosen: Section[];
  try {
    args = parseArgs(process.argv.slice(2));
    chosen = select(args.only);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${usage()}\n`);
    return 2;
  }

  let run: BenchRun | undefined;
  const abort = (why: string, code: number) => {
    progress(`${why}: cleaning up`);
    void (run?.close() ?? Promise.resolve()).finally(() => process.exit(code));
  };
  process.once("SIGINT", () => abort("interrupted", 130));
  process.once("SIGTERM", () => abort("terminated", 143));
  const watchdog = setTimeout(() => abort(`still running after ${WATCHDOG_MS / 60_000} min`, 1), WATCHDOG_MS);
  watchdog.unref();

  let exitCode = 0;
  try {
    run = await startBenchRun(progress);
    const started = performance.now();
    process.stdout.write(`# cal-token-worker benchmarks\n\n_${machineLine(run.machine, currentLoad())}_\n\n`);
    process.stdout.write(
      "All figures are ratios or differences against a baseline measured in the same run, interleaved with the measured calls; absolute milliseconds are only context.\n\n",
    );
    const reports: SectionReport[] = [];
    for (const section of chosen) {
      const notes: string[] = [];
      const { ctx, finish } = run.sectionContext(section.name, notes);
      const report: SectionReport = {
        name: section.name,
        title: section.title,
        goal: section.goal,
        rows: [],
        notes,
        seconds: 0,
        loadAtStart: currentLoad(),
      };
      progress(`section ${section.name}`);
      const t0 = performance.now();
      try {
        report.rows = await section.run(ctx);
      } catch (err) {
        report.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
        exitCode = 1;
      } finally {
        await finish();
      }
      report.seconds = (performance.now() - t0) / 1000;
      reports.push(report);
      process.stdout.write(`${renderSection(report, run.machine)}\n`);
    }
    process.stdout.write(`_total ${((performance.now() - started) / 1000).toFixed(1)} s_\n`);
    if (args.json) process.stdout.write(`${jsonLine(run.machine, reports)}\n`);
  } catch (err) {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exitCode = 1;
  } finally {
    await run?.close();
    clearTimeout(watchdog);
  }
  return exitCode;
}

const code = await main();
process.exitCode = code;
// Anything a section forgot to close must not keep the process alive.
setTimeout(() => process.exit(code), 1_000).unref();
