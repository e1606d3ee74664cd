/**
 * What every command needs once its arguments parsed: the configuration (a bad one is exit 2 with
 * every problem listed), a logger on stderr at warn level (stdout stays parseable), a clock, and
 * the mapping of unexpected failures to exit 1 with a message that carries no secret.
 */
import { loadConfig, type Config } from "../config/config.js";
import { ConfigError, isAppError } from "../core/errors.js";
import type { Clock } from "../core/types.js";
import { createLogger, type Logger } from "../log/logger.js";
import { createCalTokenClient, type CalTokenClient } from "../wiring/cal-token-client.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { EXIT, type CliIo } from "./io.js";

export interface CliDeps {
  io: CliIo;
  clock?: Clock;
}

export interface CliContext {
  io: CliIo;
  config: Config;
  logger: Logger;
  clock: Clock;
}

export const line = (io: CliIo, text: string): void => void io.stdout.write(`${text}\n`);
export const errLine = (io: CliIo, text: string): void => void io.stderr.write(`${text}\n`);

/** Runs a command body with a parsed configuration; returns the exit code. */
export async function withContext(deps: CliDeps, body: (ctx: CliContext) => Promise<number>): Promise<number> {
  const { io } = deps;
  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    errLine(io, `cal-tokens: invalid configuration:\n${err.problems.map((p) => `  - ${p}`).join("\n")}`);
    return EXIT.usage;
  }
  const logger = createLogger({
    level: "warn",
    destination: { write: (s: string) => void io.stderr.write(s) },
    base: { service: "cal-token-worker", process: "cli" },
  });
  const ctx: CliContext = { io, config, logger, clock: deps.clock ?? (() => new Date()) };
  try {
    return await body(ctx);
  } catch (err) {
    if (err instanceof ConfigError) {
      errLine(io, `cal-tokens: invalid configuration:\n${err.problems.map((p) => `  - ${p}`).join("\n")}`);
      return EXIT.usage;
    }
    // AppError messages are written to be shown; anything else is described by its type and code only.
    logger.error({ err }, "command failed");
    errLine(io, `cal-tokens: ${describeError(err)}`);
    return EXIT.failed;
  }
}

export function describeError(err: unknown): string {
  if (isAppError(err)) return `${err.message} (${err.code})`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === "string" || typeof code === "number" ? ` ${code}` : ""} (details in the log line above)`;
  }
  return "unexpected error";
}

export async function withClient<T>(ctx: CliContext, body: (client: CalTokenClient) => Promise<T>): Promise<T> {
  const client = createCalTokenClient({ config: ctx.config, logger: ctx.logger, clock: ctx.clock, databasePoolSize: 2 });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

export async function withPrisma<T>(ctx: CliContext, body: (prisma: PrismaClient) => Promise<T>): Promise<T> {
  const prisma = createPrisma(ctx.config.databaseUrl, { max: 2 });
  try {
    return await body(prisma);
  } finally {
    await prisma.$disconnect();
  }
}

/** `Date | null` for human output. */
export const when = (d: Date | null): string => (d === null ? "-" : d.toISOString());
