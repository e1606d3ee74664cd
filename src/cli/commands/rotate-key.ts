/**
 * `cal-tokens rotate-key`: re-encrypts, with the active key (the first in TOKEN_ENCRYPTION_KEYS),
 * every row whose envelopes carry another key id. Run it after every process has the new key list.
 *
 * Each row is one compare-and-swap on version and both old envelopes, and only while no lease is
 * held. `version` is NOT bumped: the plaintext pair did not change, so a refresh that read the row
 * before us still wins its own CAS, and a refresh that wrote after our read makes ours miss (its
 * pair is written with the active key anyway). updated_at is left alone for the same reason.
 */
import { Option, type Command } from "commander";
import { isAppError } from "../../core/errors.js";
import { countRowsOnOtherKeys, findRowsOnOtherKeys, writeReencryptedEnvelopes } from "../../store/key-rotation.js";
import { createTokenCipher } from "../../store/token-cipher.js";
import { positiveIntArg } from "../args.js";
import { errLine, line, withContext, withPrisma, type CliContext, type CliDeps } from "../context.js";
import { EXIT } from "../io.js";

/** At most this many ULIDs are printed per list of rows left behind. */
const MAX_ULIDS_SHOWN = 20;

export function registerRotateKey(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("rotate-key")
    .addOption(new Option("--batch-size <n>", "rows per batch").argParser(positiveIntArg(5_000)).default(200))
    .description("re-encrypt every row not on the active key (the first in TOKEN_ENCRYPTION_KEYS)")
    .action(async (opts: { batchSize: number }) => done(await withContext(deps, (ctx) => reencryptRowsOnOtherKeys(ctx, opts.batchSize))));
}

async function reencryptRowsOnOtherKeys(ctx: CliContext, batchSize: number): Promise<number> {
  const cipher = createTokenCipher(ctx.config.encryptionKeys);
  const activeKeyId = cipher.activeKeyId;
  const activePrefix = `v1.${activeKeyId}.`;
  const tally = { reencrypted: 0, leased: [] as string[], changed: [] as string[], failed: [] as string[] };
  return withPrisma(ctx, async (prisma) => {
    let after = "";
    for (;;) {
      const page = await findRowsOnOtherKeys(prisma, { prefix: activePrefix, after, limit: batchSize, now: ctx.clock() });
      for (const row of page) {
        if (row.leased) {
          tally.leased.push(row.userUlid);
          continue;
        }
        let accessEnc: string;
        let refreshEnc: string;
        try {
          accessEnc = cipher.encrypt(cipher.decrypt(row.accessTokenEnc, row.userUlid), row.userUlid);
          refreshEnc = cipher.encrypt(cipher.decrypt(row.refreshTokenEnc, row.userUlid), row.userUlid);
        } catch (err) {
          if (!isAppError(err)) throw err;
          ctx.logger.warn({ userUlid: row.userUlid, code: err.code, reason: err.message }, "rotate-key: row not re-encrypted");
          tally.failed.push(row.userUlid);
          continue;
        }
        const written = await writeReencryptedEnvelopes(prisma, { row, accessEnc, refreshEnc, now: ctx.clock() });
        if (written) tally.reencrypted += 1;
        else tally.changed.push(row.userUlid);
      }
      const last = page.at(-1);
      if (!last || page.length < batchSize) break;
      after = last.userUlid;
    }
    const remaining = await countRowsOnOtherKeys(prisma, activePrefix);
    line(
      ctx.io,
      `rotate-key: active key ${activeKeyId}; re-encrypted ${tally.reencrypted}, skipped (leased) ${tally.leased.length}, ` +
        `changed during the run ${tally.changed.length}, failed ${tally.failed.length}; rows still on other keys: ${remaining}`,
    );
    printUlids(ctx, "leased (a refresh was running; run rotate-key again)", tally.leased);
    printUlids(ctx, "changed during the run (run rotate-key again if still listed)", tally.changed);
    printUlids(ctx, "could not be decrypted with any configured key", tally.failed);
    return remaining === 0 ? EXIT.ok : EXIT.failed;
  });
}

/** One stderr line: `what`, then the ULIDs (the first MAX_ULIDS_SHOWN). Nothing when there are none. */
function printUlids(ctx: CliContext, what: string, ulids: string[]): void {
  if (ulids.length === 0) return;
  const more = ulids.length > MAX_ULIDS_SHOWN ? ` … and ${ulids.length - MAX_ULIDS_SHOWN} more` : "";
  errLine(ctx.io, `${what}: ${ulids.slice(0, MAX_ULIDS_SHOWN).join(", ")}${more}`);
}
