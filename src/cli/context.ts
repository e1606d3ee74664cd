/**
 * What every command needs once its arguments parsed: its configuration (only DATABASE_URL for
 * the read-only commands and `migrate`; all of it for the others), a logger on stderr at warn level
 * (stdout stays parseable), a clock, and one way to fail: a plain line first on stderr, then the
 * log, and with --json an `{"error": …}` document on stdout (docs/cli.md#failures).
 */
import { loadConfig, loadDatabaseUrl, type Config } from "../config/config.js";
import { ConfigError } from "../core/errors.js";
import type { Clock } from "../core/types.js";
import { createLogger, type Logger } from "../log/logger.js";
import { fleetRedis } from "../queue/connection.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { withTimeout } from "../core/timeout.js";
import { createCalTokenClient, type CalTokenClient } from "../wiring/cal-token-client.js";
import { CliFailure, databaseFailure, failures, scrubbedError, toFailure, urlSecrets, urlTarget } from "./failures.js";
import { EXIT, type CliIo, type OutputStream } from "./io.js";
import { statusStream, type StatusStream } from "./progress.js";

export interface CliDeps {
  io: CliIo;
  clock?: Clock;
}

/** The read-only commands' context: the database alone. */
export interface DbContext {
  io: CliIo & { stderr: StatusStream };
  logger: Logger;
  clock: Clock;
  /** --json: stdout carries JSON only (docs/cli.md#json-output). */
  json: boolean;
  databaseUrl: string;
}

export interface CliContext extends DbContext {
  config: Config;
}

export const line = (io: CliIo, text: string): void => void io.stdout.write(`${text}\n`);
export const errLine = (io: CliIo, text: string): void => void io.stderr.write(`${text}\n`);
export const jsonLine = (io: CliIo, value: unknown): void => line(io, JSON.stringify(value));

const REDIS_CHECK_MS = 5_000;
/** Log lines are held back until the command ends (so a failure's plain line comes first), up to this much. */
const LOG_BUFFER_CHARS = 256 * 1024;

/** Runs a command that needs only DATABASE_URL; returns the exit code. */
export function withDatabaseContext(deps: CliDeps, opts: { json: boolean }, body: (ctx: DbContext) => Promise<number>): Promise<number> {
  return run(deps, opts, (base) => body({ ...base, databaseUrl: databaseUrlOrFail(deps.io.env) }));
}

/** Runs a command with the whole configuration; returns the exit code. */
export function withContext(deps: CliDeps, opts: { json: boolean }, body: (ctx: CliContext) => Promise<number>): Promise<number> {
  return run(deps, opts, (base) => {
    const config = configOrFail(deps.io.env);
    return body({ ...base, databaseUrl: config.databaseUrl, config });
  });
}

async function run(
  deps: CliDeps,
  opts: { json: boolean },
  body: (base: Omit<DbContext, "databaseUrl">) => Promise<number>,
): Promise<number> {
  const stderr = statusStream(deps.io.stderr);
  const io = { ...deps.io, stderr };
  const log = heldBack(stderr);
  const logger = createLogger({ level: "warn", destination: log, base: { service: "cal-token-worker", process: "cli" } });
  const base = { io, logger, clock: deps.clock ?? (() => new Date()), json: opts.json };
  try {
    return await body(base);
  } catch (err) {
    const env = deps.io.env;
    const failure = toFailure(err, env.DATABASE_URL ?? null);
    errLine(io, `cal-tokens: ${failure.message}`);
    for (const d of failure.details) errLine(io, d);
    if (opts.json) jsonLine(io, { error: { code: failure.code, message: failure.message, ...detailsOf(failure) } });
    if (failure.cause !== undefined) {
      const secrets = [...urlSecrets(env.DATABASE_URL ?? ""), ...urlSecrets(env.REDIS_URL ?? "")];
      logger.error({ failure: failure.code, err: scrubbedError(failure.cause, secrets) }, failure.message);
    }
    return failure.exit;
  } finally {
    stderr.status(null);
    log.release();
  }
}

/** The listed problems of a failure (the "  - …" lines), for its JSON document. */
function detailsOf(f: CliFailure): { details?: string[] } {
  const listed = f.details.filter((d) => d.startsWith("  - ")).map((d) => d.slice(4));
  return listed.length > 0 ? { details: listed } : {};
}

/** A log destination that holds lines until release() (or until it holds too much), then writes through. */
function heldBack(out: OutputStream): { write(s: string): void; release(): void } {
  let held: string[] | null = [];
  let size = 0;
  const release = () => {
    for (const s of held ?? []) out.write(s);
    held = null;
  };
  return {
    write(s) {
      if (held === null) return void out.write(s);
      held.push(s);
      size += s.length;
      if (size > LOG_BUFFER_CHARS) release();
    },
    release,
  };
}

function databaseUrlOrFail(env: Record<string, string | undefined>): string {
  try {
    return loadDatabaseUrl(env);
  } catch {
    throw failures.databaseUrl(env.DATABASE_URL);
  }
}

/** A bad DATABASE_URL is named first, on its own line; every other problem follows. */
function configOrFail(env: Record<string, string | undefined>): Config {
  let badUrl: CliFailure | null = null;
  try {
    databaseUrlOrFail(env);
  } catch (err) {
    badUrl = err as CliFailure;
  }
  try {
    const config = loadConfig(env);
    if (badUrl) throw badUrl;
    return config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (!badUrl) throw failures.config(err);
    const others = err.problems.filter((p) => !p.startsWith("DATABASE_URL"));
    const details = others.length > 0 ? ["cal-tokens: also invalid:", ...others.map((p) => `  - ${p}`)] : [];
    throw new CliFailure(badUrl.code, badUrl.message, EXIT.usage, { details });
  }
}

/**
 * A Prisma client on DATABASE_URL, checked first: the database answers and (unless `tables: false`,
 * for `migrate`) the token table exists. Known failures become their plain line.
 */
export async function withPrisma<T>(
  ctx: DbContext,
  body: (prisma: PrismaClient) => Promise<T>,
  opts: { tables?: boolean } = {},
): Promise<T> {
  const prisma = createPrisma(ctx.databaseUrl, { max: 2 });
  try {
    try {
      if (opts.tables === false) await prisma.$queryRaw`SELECT 1`;
      else await prisma.calToken.findFirst({ select: { userUlid: true } });
    } catch (err) {
      throw databaseFailure(err, ctx.databaseUrl, true) ?? err;
    }
    return await body(prisma);
  } finally {
    await prisma.$disconnect();
  }
}

/** The on-demand client on a checked Prisma client (see withPrisma). */
export function withClient<T>(ctx: CliContext, body: (client: CalTokenClient) => Promise<T>): Promise<T> {
  return withPrisma(ctx, async (prisma) => {
    const client = createCalTokenClient({ config: ctx.config, logger: ctx.logger, clock: ctx.clock, prisma });
    try {
      return await body(client);
    } finally {
      await client.close();
    }
  });
}

/** Throws the "Redis not reachable" failure unless Redis answers a PING within a few seconds. */
export async function checkRedis(ctx: CliContext): Promise<void> {
  const redis = fleetRedis(ctx.config);
  try {
    await withTimeout(redis.ping(), REDIS_CHECK_MS, "redis ping");
  } catch (err) {
    throw failures.redisUnreachable(urlTarget(ctx.config.redisUrl, 6379).hostPort, err);
  } finally {
    redis.disconnect();
  }
}

/** `Date | null` for human output. */
export const when = (d: Date | null): string => (d === null ? "-" : d.toISOString());
