/**
 * `cal-tokens rotate-key`: re-encrypts as a v2 envelope under the active key (the first in
 * TOKEN_ENCRYPTION_KEYS) every row whose envelopes are anything else (another key id, or the v1 format
 * of earlier releases under any key), then every held-pair record in Redis. Run it after every process
 * has the new key list; retire an old key only once a run exits 0.
 *
 * Each row is one compare-and-swap on version and both old envelopes, and only while no lease is
 * held. `version` is NOT bumped: the plaintext pair did not change, so a refresh that read the row
 * before us still wins its own CAS, and a refresh that wrote after our read makes ours miss (its
 * pair is written with the active key anyway). updated_at is left alone for the same reason.
 * Held-pair records: src/store/held-pair-rotation.ts. With --json, one JSON object at the end
 * (docs/cli.md#json-output); on a terminal, a progress line on stderr while rows are re-encrypted.
 */
import { Option, type Command } from "commander";
import { isAppError } from "../../core/errors.js";
import { fleetRedis } from "../../queue/connection.js";
import { reencryptHeldPairs, type HeldPairRotation } from "../../store/held-pair-rotation.js";
import { countRowsToReencrypt, findRowsToReencrypt, writeReencryptedEnvelopes } from "../../store/key-rotation.js";
import type { PrismaClient } from "../../store/prisma.js";
import { createTokenCipher, type TokenCipher } from "../../store/token-cipher.js";
import { positiveIntArg } from "../args.js";
import { checkRedis, errLine, jsonLine, line, withContext, withPrisma, type CliContext, type CliDeps } from "../context.js";
import { toFailure } from "../failures.js";
import { EXIT } from "../io.js";
import { createProgress } from "../progress.js";

/** At most this many ULIDs are printed per list of rows left behind (all of them with --json). */
const MAX_ULIDS_SHOWN = 20;

interface RowTally {
  reencrypted: number;
  leased: string[];
  changed: string[];
  failed: string[];
  remaining: number;
}

export function registerRotateKey(program: Command, deps: CliDeps, done: (code: number) => void): void {
  program
    .command("rotate-key")
    .addOption(new Option("--batch-size <n>", "rows per batch").argParser(positiveIntArg(5_000)).default(200))
    .option("--json", "print one JSON object at the end (docs/cli.md#json-output)")
    .description("re-encrypt every row and held pair not yet v2 under the active key (the first in TOKEN_ENCRYPTION_KEYS)")
    .action(async (opts: { batchSize: number; json?: boolean }) =>
      done(await withContext(deps, { json: opts.json === true }, (ctx) => rotateKey(ctx, opts.batchSize))),
    );
}

async function rotateKey(ctx: CliContext, batchSize: number): Promise<number> {
  const cipher = createTokenCipher(ctx.config.encryptionKeys);
  return withPrisma(ctx, async (prisma) => {
    // Rows are done even without Redis; its records are then left for a later run (exit 1).
    const redisDown = await checkRedis(ctx).then(
      () => null,
      (err: unknown) => toFailure(err, null),
    );
    if (redisDown) errLine(ctx.io, `cal-tokens: ${redisDown.message}: held pairs in Redis not checked; re-encrypting the rows only`);
    const rows = await reencryptRows(ctx, prisma, cipher, batchSize);
    if (!ctx.json) printRows(ctx, cipher, rows);
    const held = redisDown ? null : await reencryptHeldPairRecords(ctx, cipher);
    if (ctx.json) jsonLine(ctx.io, { activeKeyId: cipher.activeKeyId, rows, heldPairs: held });
    return rows.remaining === 0 && held !== null && held.remaining === 0 ? EXIT.ok : EXIT.failed;
  });
}

function printRows(ctx: CliContext, cipher: TokenCipher, rows: RowTally): void {
  line(
    ctx.io,
    `rotate-key: active key ${cipher.activeKeyId}; re-encrypted ${rows.reencrypted}, skipped (leased) ${rows.leased.length}, ` +
      `changed during the run ${rows.changed.length}, failed ${rows.failed.length}; rows still to re-encrypt: ${rows.remaining}`,
  );
  printUlids(ctx, "leased (a refresh was running; run rotate-key again)", rows.leased);
  printUlids(ctx, "changed during the run (run rotate-key again if still listed)", rows.changed);
  printUlids(ctx, "could not be decrypted with any configured key", rows.failed);
}

async function reencryptRows(ctx: CliContext, prisma: PrismaClient, cipher: TokenCipher, batchSize: number): Promise<RowTally> {
  const prefix = cipher.currentPrefix;
  const tally: RowTally = { reencrypted: 0, leased: [], changed: [], failed: [], remaining: 0 };
  const total = await countRowsToReencrypt(prisma, prefix);
  const progress = createProgress(ctx.io.stderr, { label: "rotate-key", unit: "rows", total, now: () => ctx.clock().getTime() });
  let after = "";
  for (;;) {
    const page = await findRowsToReencrypt(prisma, { prefix, after, limit: batchSize, now: ctx.clock() });
    for (const row of page) {
      progress.tick();
      if (row.leased) {
        tally.leased.push(row.userUlid);
        continue;
      }
      let accessEnc: string;
      let refreshEnc: string;
      try {
        accessEnc = cipher.encrypt(cipher.decrypt(row.accessTokenEnc, row.userUlid, "access_token"), row.userUlid, "access_token");
        refreshEnc = cipher.encrypt(cipher.decrypt(row.refreshTokenEnc, row.userUlid, "refresh_token"), row.userUlid, "refresh_token");
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
  progress.done();
  tally.remaining = await countRowsToReencrypt(prisma, prefix);
  return tally;
}

/** Prints its own lines; null when the pass failed (the run then fails). */
async function reencryptHeldPairRecords(ctx: CliContext, cipher: TokenCipher): Promise<HeldPairRotation | null> {
  const redis = fleetRedis(ctx.config);
  try {
    const held = await reencryptHeldPairs({ redis, prefix: ctx.config.queuePrefix, cipher });
    if (ctx.json) return held;
    line(
      ctx.io,
      `rotate-key: held pairs in Redis: re-encrypted ${held.reencrypted}, changed during the run ${held.changed.length}, ` +
        `failed ${held.failed.length}; held pairs still to re-encrypt: ${held.remaining}`,
    );
    printUlids(ctx, "held pairs changed during the run (run rotate-key again if still listed)", held.changed);
    printUlids(ctx, "held pairs no configured key can decrypt (the worker quarantines them)", held.failed);
    return held;
  } catch (err) {
    ctx.logger.error({ err }, "rotate-key: held pairs in Redis not checked");
    errLine(ctx.io, `cal-tokens: held pairs in Redis not checked: ${toFailure(err, null).message}`);
    return null;
  } finally {
    redis.disconnect();
  }
}

/** One stderr line: `what`, then the ULIDs (the first MAX_ULIDS_SHOWN). Nothing when there are none. */
function printUlids(ctx: CliContext, what: string, ulids: string[]): void {
  if (ulids.length === 0) return;
  const more = ulids.length > MAX_ULIDS_SHOWN ? ` … and ${ulids.length - MAX_ULIDS_SHOWN} more` : "";
  errLine(ctx.io, `${what}: ${ulids.slice(0, MAX_ULIDS_SHOWN).join(", ")}${more}`);
}
