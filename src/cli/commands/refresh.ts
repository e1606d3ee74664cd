/** `cal-tokens refresh ULID [--wait] [--timeout MS] [--json]`: a refresh through the worker queue. */
import { Argument, Option, type Command } from "commander";
import { ERROR_CODES } from "../../core/errors.js";
import type { TokenRefreshResult } from "../../ondemand/types.js";
import { positiveIntArg, ulidArg } from "../args.js";
import { checkRedis, errLine, jsonLine, line, when, withClient, withContext, type CliContext, type CliDeps } from "../context.js";
import { CliFailure, failures, urlTarget } from "../failures.js";
import { EXIT } from "../io.js";

interface RefreshOptions {
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

export function registerRefresh(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("refresh")
    .addArgument(new Argument("<ulid>", "the user's ULID").argParser(ulidArg))
    .option("--wait", "wait for the worker to finish the refresh")
    .addOption(new Option("--timeout <ms>", "upper bound on --wait").argParser(positiveIntArg(3_600_000)).default(15_000))
    .option("--json", "print one JSON object (docs/cli.md#json-output)")
    .description("queue a refresh now (a running worker performs it)")
    .action(async (ulid: string, opts: RefreshOptions) =>
      done(await withContext(deps, { json: opts.json === true }, (ctx) => refresh(ctx, ulid, opts.wait === true, opts.timeout))),
    );
}

async function refresh(ctx: CliContext, ulid: string, wait: boolean, timeoutMs: number): Promise<number> {
  return withClient(ctx, async (client) => {
    await checkRedis(ctx);
    const res = await client.requestCalTokenRefresh(ulid, { wait, timeoutMs });
    if (!res.success) throw refreshFailure(ctx, ulid, res.error);
    if (!wait) {
      if (ctx.json) jsonLine(ctx.io, { userUlid: ulid, queued: true });
      else line(ctx.io, `refresh queued for ${ulid}`);
      return EXIT.ok;
    }
    report(ctx, ulid, res);
    // success with an error: the refresh failed, but the current token is still valid.
    if (res.error) errLine(ctx.io, `cal-tokens: refresh of ${ulid} failed: ${res.error.message} (${res.error.code})`);
    return res.error ? EXIT.failed : EXIT.ok;
  });
}

/** tokenInfo carries the access token: only its expiry and status are printed. */
function report(ctx: CliContext, ulid: string, res: TokenRefreshResult): void {
  const info = res.tokenInfo;
  const expires = info?.accessTokenExpiresAt ?? null;
  if (ctx.json) {
    const error = res.error ? { code: res.error.code, message: res.error.message, retryable: res.error.retryable } : null;
    jsonLine(ctx.io, { userUlid: ulid, refreshed: res.refreshed, status: info?.status ?? null, accessTokenExpiresAt: expires, error });
    return;
  }
  line(
    ctx.io,
    `${res.refreshed ? "refreshed" : "not refreshed (token unchanged)"} ${ulid}: status ${info?.status ?? "?"}, access token expires ${when(expires)}`,
  );
}

function refreshFailure(ctx: CliContext, ulid: string, error: TokenRefreshResult["error"]): CliFailure {
  const what = `refresh of ${ulid} failed`;
  if (error?.code === ERROR_CODES.decryptFailed) return failures.decryptFailed(what);
  if (error?.code === ERROR_CODES.queueUnavailable)
    return failures.redisUnreachable(urlTarget(ctx.config.redisUrl, 6379).hostPort, undefined);
  if (!error) return new CliFailure(ERROR_CODES.internal, `${what}: no reason given`, EXIT.failed);
  return new CliFailure(error.code, `${what}: ${error.message} (${error.code})`, EXIT.failed);
}
