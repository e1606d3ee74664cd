/**
 * The refresh use case: the only code that calls Cal.com's token endpoints and the only code that
 * writes a rotated pair. Every path (on-demand, worker, CLI) comes through here.
 *
 * Single flight (docs/architecture.md#invariant-1-single-flight): concurrent callers in this process
 * share one promise; across processes the authority is the lease on the token row, taken with one
 * atomic UPDATE that also re-reads it. Waiters poll until the row's version moves (someone
 * refreshed) or the lease lapses. Settling the answer lives in settle.ts and persist.ts; held pairs
 * in held-pairs.ts.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { concurrentAttemptFailure, failure, failureFromError } from "../core/failures.js";
import type { AlertSink, CalcomTokenApi, HeldPairStore, TokenRecord, TokenStore } from "../core/ports.js";
import { withTimeout } from "../core/timeout.js";
import type { Clock, Rand, TokenPair } from "../core/types.js";
import { componentLogger, type Logger } from "../log/logger.js";
import {
  type Attempt,
  failed,
  isRecord,
  readToken,
  type RefreshContext,
  type RefreshPolicy,
  reconnectRequired,
  settledByOther,
} from "./attempt.js";
import { alert, audit } from "./effects.js";
import { createHeldPairs, type HeldPairs } from "./held-pairs.js";
import { releaseLease } from "./lease.js";
import { settle } from "./settle.js";
import type { OutcomeEvent, RefreshOutcome, RefreshRequest } from "./types.js";

export type { RefreshPolicy } from "./attempt.js";

export const DEFAULT_REFRESH_POLICY: Omit<RefreshPolicy, "leaseMs" | "leadMs" | "jitterMs"> = {
  failureWindowMs: 60 * 60_000,
  pollIntervalMs: 40,
  persistAttempts: 6,
  persistRetryBaseMs: 250,
};

/** A held pair is looked up in the shared store before every refresh; Redis must not stall it. */
const SHARED_HELD_PAIR_GET_TIMEOUT_MS = 1_000;

export interface RefresherDeps {
  store: TokenStore;
  calcom: CalcomTokenApi;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  policy: RefreshPolicy;
  sleep?: (ms: number) => Promise<void>;
  onOutcome?: (event: OutcomeEvent) => void;
  /** Status flips → webhook events (src/events). Optional: the on-demand client works without it. */
  alerts?: AlertSink;
  /** Shared storage for held pairs (src/store/held-pair-store.ts). */
  heldPairStore?: HeldPairStore;
}

export interface Refresher {
  refresh(req: RefreshRequest): Promise<RefreshOutcome>;
  /** A rotated pair the database has not taken yet (see held-pairs.ts). */
  heldPair(userUlid: string): TokenPair | undefined;
  readonly heldPairs: HeldPairs;
  readonly ownerId: string;
  close(): Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Builds the refresher. It starts no timers: the composition root starts `heldPairs` flushing. */
export function createRefresher(deps: RefresherDeps): Refresher {
  const log = componentLogger(deps.logger, "tokenService");
  const partial = {
    store: deps.store,
    calcom: deps.calcom,
    log,
    clock: deps.clock,
    rand: deps.rand,
    sleep: deps.sleep ?? defaultSleep,
    policy: deps.policy,
    ownerId: `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`,
    leaseTakenAt: new Map<string, number>(),
    ...(deps.alerts ? { alerts: deps.alerts } : {}),
    ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
  };
  const heldPairs = createHeldPairs({
    store: deps.store,
    logger: log,
    clock: deps.clock,
    ...(deps.heldPairStore ? { shared: deps.heldPairStore } : {}),
    onWritten: async (held, meta) => {
      await audit(
        ctx,
        { userUlid: held.userUlid, trigger: held.trigger as RefreshRequest["trigger"], outcome: "RECOVERED", version: meta.version },
        held.heldSince,
      );
      await alert(ctx, "recovered", (s) => s.recovered({ userUlid: held.userUlid, kind: meta.kind, now: deps.clock() }));
    },
  });
  const ctx: RefreshContext = { ...partial, heldPairs };
  const inFlight = new Map<string, Promise<RefreshOutcome>>();

  return {
    ownerId: ctx.ownerId,
    heldPairs,
    heldPair: (userUlid) => heldPairs.get(userUlid)?.pair,
    refresh(req) {
      const existing = inFlight.get(req.userUlid);
      if (existing) return existing;
      const p = run(ctx, req, deps.heldPairStore).finally(() => {
        inFlight.delete(req.userUlid);
        ctx.leaseTakenAt.delete(req.userUlid);
      });
      inFlight.set(req.userUlid, p);
      return p;
    },
    async close() {
      await Promise.allSettled([...inFlight.values()]);
      await heldPairs.close();
    },
  };
}

async function run(ctx: RefreshContext, req: RefreshRequest, shared: HeldPairStore | undefined): Promise<RefreshOutcome> {
  const started = ctx.clock();
  const held = await heldPairFirst(ctx, req, shared);
  if (held) return held;
  // The on-demand path just read the row; reusing it saves a round trip (the lease re-reads anyway).
  const first = req.knownToken ?? (await readToken(ctx, req.userUlid));
  if (!isRecord(first)) return first;
  if (first.status === "RECONNECT_REQUIRED") return reconnectRequired(first);
  if (req.staleAccessToken !== undefined && first.accessToken !== req.staleAccessToken) {
    return { ok: true, how: "by_other", token: first };
  }
  return leaseLoop(ctx, req, first, started);
}

/**
 * A held pair (rotated but not yet written; here or in a process that died) is the user's live pair:
 * write it before anything else, never refresh over it with the dead token the row still holds. One
 * shared-store GET per refresh, never on the fresh-token path. `null` = nothing held, go on.
 */
async function heldPairFirst(ctx: RefreshContext, req: RefreshRequest, shared: HeldPairStore | undefined): Promise<RefreshOutcome | null> {
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

/** Takes the lease (or waits for whoever holds it), then refreshes holding it. */
async function leaseLoop(ctx: RefreshContext, req: RefreshRequest, first: TokenRecord, started: Date): Promise<RefreshOutcome> {
  const observedVersion = req.observedVersion ?? first.version;
  const giveUpAt = started.getTime() + ctx.policy.leaseMs + 5_000;
  for (;;) {
    const now = ctx.clock();
    let lease: Awaited<ReturnType<typeof ctx.store.acquireLease>>;
    try {
      lease = await ctx.store.acquireLease(req.userUlid, ctx.ownerId, new Date(now.getTime() + ctx.policy.leaseMs), now);
    } catch (err) {
      return failed(first, failureFromError(err, "storeUnavailable"));
    }
    if (lease.kind === "missing") return failed(null, failure("notFound"));
    if (lease.kind === "held") {
      if (lease.meta.version !== observedVersion) return settledByOther(ctx, req.userUlid);
      if (ctx.clock().getTime() > giveUpAt) return failed(first, failure("leaseTimeout"));
      await ctx.sleep(ctx.policy.pollIntervalMs * (0.5 + ctx.rand()));
      continue;
    }
    const token = lease.token;
    ctx.leaseTakenAt.set(req.userUlid, now.getTime());
    // The lease re-read the row: someone may have finished a refresh while we decided or waited.
    if (token.version !== observedVersion || token.status === "RECONNECT_REQUIRED") {
      await releaseLease(ctx, req.userUlid);
      return token.status === "RECONNECT_REQUIRED" ? reconnectRequired(token) : { ok: true, how: "by_other", token };
    }
    // A refresh attempt failed while we waited for its lease: share its failure instead of hammering Cal.com.
    if (token.lastFailureAt && token.lastFailureAt.getTime() >= started.getTime()) {
      await releaseLease(ctx, req.userUlid);
      return failed(token, concurrentAttemptFailure(token.lastFailureCode));
    }
    return refreshHoldingLease({ ctx, req, token, started });
  }
}

async function refreshHoldingLease(a: Attempt): Promise<RefreshOutcome> {
  const { ctx, token } = a;
  let settled = false;
  try {
    const result =
      token.kind === "managed" ? await ctx.calcom.refreshManaged(token.refreshToken) : await ctx.calcom.refreshOAuth2(token.refreshToken);
    const outcome = await settle(a, result, "REFRESHED");
    settled = true;
    return outcome;
  } finally {
    // Every settled path already released the lease in its own write; this covers throws.
    if (!settled) await releaseLease(ctx, token.userUlid);
  }
}
