/** `cal-tokens refresh ULID [--wait] [--timeout MS]`: a refresh through the worker queue. */
import { Argument, Option, type Command } from "commander";
import { positiveIntArg, ulidArg } from "../args.js";
import { errLine, line, when, withClient, withContext, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

export function registerRefresh(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("refresh")
    .addArgument(new Argument("<ulid>", "the user's ULID").argParser(ulidArg))
    .option("--wait", "wait for the worker to finish the refresh")
    .addOption(new Option("--timeout <ms>", "upper bound on --wait").argParser(positiveIntArg(3_600_000)).default(15_000))
    .description("queue a refresh now (a running worker performs it)")
    .action(async (ulid: string, opts: { wait?: boolean; timeout: number }) =>
      done(
        await withContext(deps, (ctx) =>
          withClient(ctx, async (client) => {
            const wait = opts.wait === true;
            const res = await client.requestCalTokenRefresh(ulid, { wait, timeoutMs: opts.timeout });
            if (!res.success) {
              errLine(ctx.io, `cal-tokens: refresh of ${ulid} failed: ${res.error?.code ?? "unknown"}: ${res.error?.message ?? ""}`);
              return EXIT.failed;
            }
            if (!wait) {
              line(ctx.io, `refresh queued for ${ulid}`);
              return EXIT.ok;
            }
            // tokenInfo carries the access token: only its expiry and status are printed.
            const info = res.tokenInfo;
            line(
              ctx.io,
              `${res.refreshed ? "refreshed" : "not refreshed (token unchanged)"} ${ulid}: status ${info?.status ?? "?"}, access token expires ${when(info?.accessTokenExpiresAt ?? null)}`,
            );
            // success with an error: the refresh failed, but the current token is still valid.
            if (res.error) errLine(ctx.io, `cal-tokens: refresh failed: ${res.error.code}: ${res.error.message}`);
            return res.error ? EXIT.failed : EXIT.ok;
          }),
        ),
      ),
    );
}
