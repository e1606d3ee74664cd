/**
 * The CLI's only contact with the process: output streams, input, environment and the exit code.
 * main.ts passes the real ones; tests pass captureIo() and run the program in-process.
 */
import { Readable } from "node:stream";

export interface OutputStream {
  write(chunk: string): unknown;
  /** A terminal: `import` and `rotate-key` draw their progress line on stderr only then. */
  readonly isTTY?: boolean | undefined;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Read only by `import -` (token records never travel on argv). */
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  /** Called exactly once per run by runCli, after every connection was closed. */
  exit(code: number): void;
}

/** Exit codes (docs/cli.md#exit-codes). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function processIo(): CliIo {
  return {
    stdout: closable(process.stdout),
    stderr: closable(process.stderr),
    stdin: process.stdin,
    env: process.env,
    exit(code) {
      // Let stdout drain and handles close on their own; a stuck handle must not keep the CLI alive.
      process.exitCode = code;
      setTimeout(() => process.exit(code), 3_000).unref();
    },
  };
}

/**
 * A reader that went away (`cal-tokens list | head -1`) is not an error: EPIPE stops the output and
 * the command finishes with its usual exit code (docs/cli.md#output). Without a listener, Node
 * throws the stream's 'error' event and dies with a stack trace.
 */
function closable(stream: NodeJS.WriteStream): OutputStream {
  let closed = false;
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE" || err.code === "ERR_STREAM_DESTROYED") {
      closed = true;
      return;
    }
    throw err;
  });
  return {
    isTTY: stream.isTTY === true,
    write: (chunk: string) => (closed || stream.destroyed ? false : stream.write(chunk)),
  };
}

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
  /** The code passed to exit(), or null while the run has not finished. */
  code(): number | null;
}

/** In-memory io for tests and embedding: stdin from a string, output collected; stderr a terminal if asked. */
export function captureIo(opts: { env: Record<string, string | undefined>; stdin?: string; stderrIsTTY?: boolean }): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  let code: number | null = null;
  return {
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s), isTTY: opts.stderrIsTTY === true },
    stdin: Readable.from([opts.stdin ?? ""]),
    env: opts.env,
    exit(c) {
      code = c;
    },
    out: () => out.join(""),
    err: () => err.join(""),
    code: () => code,
  };
}
