/**
 * Writing a pair Cal.com just issued (docs/architecture.md#invariant-2-persist-first: persist first,
 * compare-and-swap on the version we read). The first failed write makes it a held pair at once (in
 * this process and in the shared store, so a kill -9 a moment later loses nothing); the write is then
 * retried while our lease covers us and the process is not closing. Whatever happens, the pair is
 * either in the row or held — never dropped.
 */
import type { ExpiryNote } from "../core/calcom-result.js";
import { ERROR_CODES } from "../core/errors.js";
import { assumedRefreshTokenExpiry, planNextRefresh } from "../core/grant-policy.js";
import type { RefreshTrigger, TokenPair } from "../core/types.js";
import { type Attempt, settledByOther } from "./attempt.js";
import { alert, emitOutcome, pairChanged } from "./effects.js";
import type { OwnedHeldPair } from "./held-pairs.js";
import { leaseLeftMs } from "./lease.js";
import type { RefreshOutcome } from "./types.js";

export type SuccessOutcome = "REFRESHED" | "FORCE_REFRESHED";

/** Past this little lease left, another process may act on the old row: stop retrying, keep the pair held. */
const MIN_LEASE_LEFT_FOR_RETRY_MS = 1_000;
const MAX_RETRY_DELAY_MS = 5_000;

/** What the Cal.com client said about the answer: how the access-token expiry was read, and when the request left. */
export interface IssuedNote {
  expiry?: ExpiryNote | undefined;
  sentAt?: Date | undefined;
}

/** Request paths and the web app's own refresh requests: the user is using the token right now. */
const REQUEST_TRIGGERS: readonly RefreshTrigger[] = ["on_demand", "api_expired", "manual"];

export async function persistPair(a: Attempt, issued: TokenPair, outcome: SuccessOutcome, note: IssuedNote = {}): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  const auditCode = expiryAuditCode(a, note.expiry);
  const now = ctx.clock();
  // Cal.com does not send an OAuth2 refresh token's expiry: 30 days from when the request left (the
  // attempt's start if the client did not say, which is earlier). Stored with the pair, held or not.
  const pair: TokenPair = {
    ...issued,
    refreshTokenExpiresAt: assumedRefreshTokenExpiry(token.kind, note.sentAt ?? a.started, issued.refreshTokenExpiresAt),
  };
  const nextRefreshAt = planAfterRefresh(a, pair, now);
  let held: OwnedHeldPair | null = null;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await writeOnce(a, pair, outcome, nextRefreshAt, auditCode);
      if (held) await ctx.heldPairs.forget(held);
      // Our own held pair may have been written meanwhile (by the flusher, or a write whose answer was
      // lost): the row holds the pair this attempt obtained, so this attempt did refresh.
      if (res.ok && res.how === "by_other" && res.token.refreshToken === pair.refreshToken) return { ...res, how: successHow(outcome) };
      return res;
    } catch (err) {
      if (!held) {
        held = {
          userUlid: token.userUlid,
          expectedVersion: token.version,
          owner: a.lease.token,
          pair,
          nextRefreshAt,
          trigger: a.req.trigger,
          heldSince: a.started,
        };
        await ctx.heldPairs.hold(held);
      }
      const mayRetry = !ctx.closing.value && attempt + 1 < ctx.policy.persistAttempts && leaseLeftMs(a) > MIN_LEASE_LEFT_FOR_RETRY_MS;
      if (mayRetry) {
        ctx.log.warn({ userUlid: token.userUlid, attempt, err }, "rotated pair not written yet; held, retrying");
        await ctx.sleep(Math.min(ctx.policy.persistRetryBaseMs * 2 ** attempt, MAX_RETRY_DELAY_MS));
        continue;
      }
      ctx.log.error({ userUlid: token.userUlid, err }, "database unavailable: holding the rotated pair until it can be written");
      // The caller can use the new access token now; the write follows when the database is back.
      return { ok: true, how: successHow(outcome), token: { ...token, ...pair, nextRefreshAt, version: token.version } };
    }
  }
}

/**
 * The row's next refresh time after a new pair (docs/architecture.md#scheduling): the grant policy's
 * plan (keep fresh an active user, keep alive an idle OAuth2 grant, park an idle managed user), where a
 * refresh for a request counts as use now (its last_used_at write may not have landed yet). At least
 * MIN_REFRESH_INTERVAL ahead: an expiry that is always "nearly now" must not make the worker refresh
 * this user again at once, over and over. Request paths still refresh a lapsed token inline.
 */
function planAfterRefresh(a: Attempt, pair: TokenPair, now: Date): Date {
  const { ctx, token, req } = a;
  const lastUsedAt = REQUEST_TRIGGERS.includes(req.trigger) ? now : token.lastUsedAt;
  const plan = planNextRefresh({ ...pair, kind: token.kind, lastUsedAt }, now, ctx.policy, ctx.rand);
  return new Date(Math.max(plan.at.getTime(), now.getTime() + ctx.policy.minIntervalMs));
}

/** One compare-and-swap, with its audit row in the same statement. Throws when the database fails. */
async function writeOnce(
  a: Attempt,
  pair: TokenPair,
  outcome: SuccessOutcome,
  nextRefreshAt: Date,
  note: string | null,
): Promise<RefreshOutcome> {
  const { ctx, token, req } = a;
  const res = await ctx.store.saveRotated({
    userUlid: token.userUlid,
    expectedVersion: token.version,
    owner: a.lease.token,
    pair,
    nextRefreshAt,
    now: ctx.clock(),
    audit: { outcome, trigger: req.trigger, durationMs: Math.round(ctx.clock().getTime() - a.started.getTime()), errorCode: note },
  });
  if (!res.ok) {
    // Someone else wrote a newer pair (e.g. the user reconnected): theirs wins; never overwrite.
    ctx.log.warn({ userUlid: token.userUlid }, "rotated pair lost the compare-and-swap; using the stored one");
    return settledByOther(ctx, token.userUlid);
  }
  const how = successHow(outcome);
  ctx.log.info({ userUlid: token.userUlid, version: res.meta.version, how, trigger: req.trigger }, "token refreshed");
  emitOutcome(ctx, { userUlid: token.userUlid, trigger: req.trigger, outcome }, a.started);
  pairChanged(ctx, token.userUlid);
  // Only a user with a failure streak can have an open alert; skip the extra write otherwise.
  if (token.failureCount > 0 || token.rotationUncertain || token.firstFailureAt !== null) {
    await alert(ctx, "recovered", (s) => s.recovered({ userUlid: token.userUlid, kind: token.kind, now: ctx.clock() }));
  }
  return { ok: true, how, token: { ...res.meta, accessToken: pair.accessToken, refreshToken: pair.refreshToken } };
}

/**
 * A pair is never thrown away for its expiry (docs/calcom-api.md#response-bodies-and-expiry-formats),
 * but an expiry we had to assume or convert is worth knowing about: a warning (assumed) or an info line
 * (converted), and a code on the audit row, which /metrics counts.
 */
function expiryAuditCode(a: Attempt, expiry: ExpiryNote | undefined): string | null {
  if (!expiry || expiry.source === "epoch_ms" || expiry.source === "expires_in") return null;
  const fields = { userUlid: a.token.userUlid, expiry };
  if (expiry.source === "assumed") {
    a.ctx.log.warn(fields, "Cal.com gave no usable access-token expiry; a conservative one was assumed");
    return ERROR_CODES.expiryAssumed;
  }
  a.ctx.log.info(fields, "Cal.com sent the access-token expiry in an unusual form; converted");
  return ERROR_CODES.expiryConverted;
}

function successHow(outcome: SuccessOutcome): "refreshed" | "force_refreshed" {
  return outcome === "REFRESHED" ? "refreshed" : "force_refreshed";
}
