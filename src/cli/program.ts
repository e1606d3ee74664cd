/**
 * `cal-tokens`: the operator's CLI (docs/cli.md). buildProgram() wires the commands to injected io
 * so tests run it in-process; runCli() parses argv, maps commander's usage errors to exit 2 and
 * calls io.exit exactly once, after the command closed its connections.
 */
import { Command, CommanderError } from "commander";
import type { CliDeps } from "./context.js";
import { EXIT } from "./io.js";
import { registerImport } from "./commands/import.js";
import { registerList } from "./commands/list.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerRefresh } from "./commands/refresh.js";
import { registerRotateKey } from "./commands/rotate-key.js";
import { registerStatus } from "./commands/status.js";
import { registerSweep } from "./commands/sweep.js";
import { packageVersion } from "./version.js";

export type { CliDeps } from "./context.js";

/** Commands report their exit code through deps.io.exit. */
export function buildProgram(deps: CliDeps): Command {
  const { io } = deps;
  const program = new Command("cal-tokens")
    .description(
      "Operate the Cal.com token store: import, inspect, refresh, sweep, rotate the encryption key.\nConfiguration comes from the environment (see .env.example).",
    )
    .version(packageVersion(), "-V, --version", "print the version")
    .addHelpText(
      "after",
      "\nExit codes: 0 ok; 1 the operation failed (a retry may succeed); 2 usage, configuration or setup error.\n" +
        "Every command takes --json. Details: docs/cli.md.",
    )
    // Settings set here are inherited by the subcommands created below.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError("(run cal-tokens --help for usage)");
  const done = (code: number) => io.exit(code);
  registerImport(program, deps, done);
  registerStatus(program, deps, done);
  registerRefresh(program, deps, done);
  registerSweep(program, deps, done);
  registerList(program, deps, done);
  registerRotateKey(program, deps, done);
  registerMigrate(program, deps, done);
  return program;
}

/** Runs one command line (without "node" and the script); returns the exit code it passed to io.exit. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram({
    ...deps,
    io: {
      ...deps.io,
      exit: (c) => {
        code = c;
      },
    },
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and `help CMD` exit 0; every other commander error is a usage error.
      code = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else {
      // Commands catch their own failures; reaching this is a bug, still without echoing input.
      deps.io.stderr.write(`cal-tokens: unexpected error: ${err instanceof Error ? err.name : "unknown"}\n`);
      code = EXIT.failed;
    }
  }
  deps.io.exit(code);
  return code;
}
