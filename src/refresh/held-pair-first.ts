/**
 * Before any refresh: a held pair (rotated but not yet written; here or in a process that died) is the
 * user's live pair. Write it before anything else, never refresh over it with the dead token the row
 * still holds. One shared-store GET per refresh, never on the fresh-token path.
 */
import type { HeldPairStore } from "../core/ports.js";
import { withTimeout } from "../core/timeout.js";
import { isRecord, readToken, type RefreshContext, settledByOther } from "./attempt.js";
import type { RefreshOutcome, RefreshRequest } from "./types.js";

/** A held pair is looked up in the shared store before every refresh; Redis must not stall it. */
const SHARED_HELD_PAIR_GET_TIMEOUT_MS = 1_000;

/** `null` = nothing held for this user: go on and refresh. */
export async function heldPairFirst(
  ctx: RefreshContext,
  req: RefreshRequest,
  shared: HeldPairStore | undefined,
): Promise<RefreshOutcome | null> {
  const { heldPairs } = ctx;
  if (!heldPairs.get(req.userUlid) && shared) {
    const found = await withTimeout(shared.get(req.userUlid), SHARED_HELD_PAIR_GET_TIMEOUT_MS, "held pair store get").catch(() => null);
    if (found) heldPairs.takeOver(found);
  }
  if (!heldPairs.get(req.userUlid)) return null;
  await heldPairs.flush();
  const still = heldPairs.get(req.userUlid);
  if (!still) return settledByOther(ctx, req.userUlid);
  const stale = req.knownToken ?? (await readToken(ctx, req.userUlid));
  if (!isRecord(stale)) return stale;
  return { ok: true, how: "by_other", token: { ...stale, ...still.pair, nextRefreshAt: still.nextRefreshAt } };
}
