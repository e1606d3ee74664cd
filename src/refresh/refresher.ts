/**
 * The refresh use case: the only code that calls Cal.com's token endpoints and the only code that
 * writes a rotated pair. Every path (on-demand, worker, CLI) comes through here.
 *
 * Single flight (docs/architecture.md#invariant-1-single-flight): concurrent callers in this process
 * share one promise (keyed by the canonical ULID); across processes the authority is the lease on the
 * token row, taken with one atomic UPDATE that also re-reads it. Each attempt holds its own lease token,
 * so two attempts can never hold one row. Waiters poll until the row's version moves (someone
 * refreshed) or the lease lapses. Settling the answer lives in settle.ts and persist.ts; the fleet
 * gates in gates.ts; held pairs in held-pairs.ts.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { concurrentAttemptFailure, coolingDownFailure, failure, failureFromError } from "../core/failures.js";
import type { GrantPolicy } from "../core/grant-policy.js";
import type { AlertSink, CallBudget, CalcomTokenApi, ConfigBreaker, HeldPairStore, TokenRecord, TokenStore } from "../core/ports.js";
import type { CalTokenKind, Clock, Rand, TokenPair } from "../core/types.js";
import { normalizeUlid } from "../core/ulid.js";
import { componentLogger, type Logger } from "../log/logger.js";
import { failed, isRecord, readToken, type RefreshContext, type RefreshPolicy, reconnectRequired, settledByOther } from "./attempt.js";
import { clientMissing } from "./client-guard.js";
import { alert, audit, pairChanged } from "./effects.js";
import { heldPairFirst } from "./held-pair-first.js";
import { createHeldPairs, type HeldPairs } from "./held-pairs.js";
import { releaseLease } from "./lease.js";
import { refreshHoldingLease } from "./settle.js";
import type { OutcomeEvent, RefreshOutcome, RefreshRequest } from "./types.js";

export type { RefreshPolicy } from "./attempt.js";

export const DEFAULT_REFRESH_POLICY: Omit<RefreshPolicy, "leaseMs" | "callLeaseMs" | "minIntervalMs" | keyof GrantPolicy> = {
  failureWindowMs: 60 * 60_000,
  pollIntervalMs: 40,
  persistAttempts: 6,
  persistRetryBaseMs: 250,
};

export interface RefresherDeps {
  store: TokenStore;
  calcom: CalcomTokenApi;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  policy: RefreshPolicy;
  sleep?: (ms: number) => Promise<void>;
  onOutcome?: (event: OutcomeEvent) => void;
  /** Called when a user's stored pair or status changed here (caches across the fleet drop the user). */
  onPairChanged?: (userUlid: string) => void;
  /** Status flips → webhook events (src/events). Optional: the on-demand client works without it. */
  alerts?: AlertSink;
  /** Shared storage for held pairs (src/store/held-pair-store.ts). */
  heldPairStore?: HeldPairStore;
  /** Fleet-wide gates (src/fleet): the configuration breaker and the shared call budget. */
  breaker?: ConfigBreaker;
  budget?: CallBudget;
  /** Kinds whose Cal.com client is not configured (docs/oauth2.md#configuration); absent = both are. */
  unconfiguredKinds?: readonly CalTokenKind[];
}

export interface Refresher {
  refresh(req: RefreshRequest): Promise<RefreshOutcome>;
  /** A rotated pair the database has not taken yet (see held-pairs.ts). */
  heldPair(userUlid: string): TokenPair | undefined;
  readonly heldPairs: HeldPairs;
  readonly ownerId: string;
  /** Shutdown has begun: refreshes in flight stop retrying writes (their pairs stay held); close() follows. */
  stopRetrying(): void;
  close(): Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Builds the refresher. It starts no timers: the composition root starts `heldPairs` flushing. */
export function createRefresher(deps: RefresherDeps): Refresher {
  const log = componentLogger(deps.logger, "tokenService");
  const closing = { value: false };
  const heldPairs = createHeldPairs({
    store: deps.store,
    logger: log,
    clock: deps.clock,
    closing,
    ...(deps.heldPairStore ? { shared: deps.heldPairStore } : {}),
    onWritten: async (held, meta) => {
      pairChanged(ctx, held.userUlid);
      const trigger = held.trigger as RefreshRequest["trigger"];
      await audit(ctx, { userUlid: held.userUlid, trigger, outcome: "RECOVERED", version: meta.version }, held.heldSince);
      await alert(ctx, "recovered", (s) => s.recovered({ userUlid: held.userUlid, kind: meta.kind, now: deps.clock() }));
    },
  });
  const ctx: RefreshContext = {
    store: deps.store,
    calcom: deps.calcom,
    log,
    clock: deps.clock,
    rand: deps.rand,
    sleep: deps.sleep ?? defaultSleep,
    policy: deps.policy,
    ownerId: `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`,
    heldPairs,
    closing,
    ...(deps.alerts ? { alerts: deps.alerts } : {}),
    ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
    ...(deps.onPairChanged ? { onPairChanged: deps.onPairChanged } : {}),
    ...(deps.breaker ? { breaker: deps.breaker } : {}),
    ...(deps.budget ? { budget: deps.budget } : {}),
    ...(deps.unconfiguredKinds ? { unconfiguredKinds: deps.unconfiguredKinds } : {}),
  };
  const inFlight = new Map<string, Promise<RefreshOutcome>>();
  let attempts = 0;

  return {
    ownerId: ctx.ownerId,
    heldPairs,
    heldPair: (userUlid) => heldPairs.get(normalizeUlid(userUlid))?.pair,
    refresh(raw) {
      // One user, one identity: `01abc…` and `01ABC…` share one flight and one lease.
      const req = { ...raw, userUlid: normalizeUlid(raw.userUlid) };
      const existing = inFlight.get(req.userUlid);
      if (existing) return existing;
      attempts += 1;
      const p = run(ctx, req, `${ctx.ownerId}:${attempts}`, deps.heldPairStore).finally(() => inFlight.delete(req.userUlid));
      inFlight.set(req.userUlid, p);
      return p;
    },
    stopRetrying() {
      closing.value = true;
    },
    async close() {
      closing.value = true;
      await Promise.allSettled([...inFlight.values()]);
      await heldPairs.close();
    },
  };
}

async function run(
  ctx: RefreshContext,
  req: RefreshRequest,
  leaseToken: string,
  shared: HeldPairStore | undefined,
): Promise<RefreshOutcome> {
  const started = ctx.clock();
  const held = await heldPairFirst(ctx, req, shared);
  if (held) return held;
  // The on-demand path just read the row; reusing it saves a round trip (the lease re-reads anyway).
  const first = req.knownToken ?? (await readToken(ctx, req.userUlid));
  if (!isRecord(first)) return first;
  if (first.status === "RECONNECT_REQUIRED") return reconnectRequired(first);
  const noClient = clientMissing(ctx, first);
  if (noClient) return noClient;
  if (req.staleAccessToken !== undefined && first.accessToken !== req.staleAccessToken) {
    return { ok: true, how: "by_other", token: first };
  }
  const early = notNow(ctx, req, first);
  if (early) return early;
  return leaseLoop(ctx, req, first, started, leaseToken);
}

/**
 * The cool-down after a failure: the row's nextRefreshAt, so every process shares it. Request paths
 * inside it get the still-valid token or a retryable result instead of calling Cal.com again; the
 * worker's job is scheduled at that time anyway.
 */
function notNow(ctx: RefreshContext, req: RefreshRequest, token: TokenRecord): RefreshOutcome | null {
  const coolingDownMs = token.lastFailureAt !== null ? token.nextRefreshAt.getTime() - ctx.clock().getTime() : 0;
  if (req.trigger !== "worker" && coolingDownMs > 0) {
    return failed(token, coolingDownFailure(token.lastFailureCode), coolingDownMs);
  }
  return null;
}

/** Takes the lease (or waits for whoever holds it), then refreshes holding it. */
async function leaseLoop(
  ctx: RefreshContext,
  req: RefreshRequest,
  first: TokenRecord,
  started: Date,
  leaseToken: string,
): Promise<RefreshOutcome> {
  const observedVersion = req.observedVersion ?? first.version;
  // A holder extends its lease to cover each call, so a live one may hold it that long, twice.
  const giveUpAt = started.getTime() + 2 * ctx.policy.callLeaseMs + ctx.policy.leaseMs;
  for (;;) {
    const takenAt = ctx.clock().getTime();
    let lease: Awaited<ReturnType<typeof ctx.store.acquireLease>>;
    try {
      lease = await ctx.store.acquireLease(req.userUlid, leaseToken, ctx.policy.leaseMs);
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
    // The lease re-read the row: someone may have finished a refresh while we decided or waited.
    if (token.version !== observedVersion || token.status === "RECONNECT_REQUIRED") {
      await releaseLease(ctx, req.userUlid, leaseToken);
      return token.status === "RECONNECT_REQUIRED" ? reconnectRequired(token) : { ok: true, how: "by_other", token };
    }
    // A refresh attempt failed while we waited for its lease: share its failure instead of hammering Cal.com.
    if (token.lastFailureAt && token.lastFailureAt.getTime() >= started.getTime()) {
      await releaseLease(ctx, req.userUlid, leaseToken);
      return failed(token, concurrentAttemptFailure(token.lastFailureCode));
    }
    return refreshHoldingLease({ ctx, req, token, started, lease: { token: leaseToken, endsAt: takenAt + ctx.policy.leaseMs } });
  }
}
