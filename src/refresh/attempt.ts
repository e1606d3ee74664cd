/**
 * The values every step of one refresh shares. `RefreshContext` is built once per refresher (its
 * dependencies plus this process's lease owner id); an `Attempt` is one refresh of one user holding
 * the lease, so the settle functions take one argument instead of threading (token, req, started).
 */
import { failure, failureFromError, type Failure } from "../core/failures.js";
import type { GrantPolicy } from "../core/grant-policy.js";
import type { AlertSink, CallBudget, CalcomTokenApi, ConfigBreaker, TokenRecord, TokenStore } from "../core/ports.js";
import type { CalTokenKind, Clock, Rand } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import type { HeldPairs } from "./held-pairs.js";
import type { CalcomAnswer, OutcomeEvent, RefreshOutcome, RefreshRequest } from "./types.js";

/**
 * How a refresh behaves. The grant policy's part (src/core/grant-policy.ts: keep-fresh lead and jitter,
 * the keep-fresh window, keep-alive, parking) plans the next refresh after each new pair.
 */
export interface RefreshPolicy extends GrantPolicy {
  /** The base lease a refresh holds outside its Cal.com calls: a dead holder blocks others this long. */
  leaseMs: number;
  /** The lease taken right before each Cal.com call: the HTTP timeout plus a margin, so no second call can start. */
  callLeaseMs: number;
  /** No two refreshes of one user closer than this (except a forced one or after a 498): stops loops. */
  minIntervalMs: number;
  /** Failures are counted at most once per window (a flapping Cal.com does not exhaust users). */
  failureWindowMs: number;
  pollIntervalMs: number;
  /** Retries of the database write of a rotated pair before it is held. */
  persistAttempts: number;
  persistRetryBaseMs: number;
}

export interface RefreshContext {
  store: TokenStore;
  calcom: CalcomTokenApi;
  log: Logger;
  clock: Clock;
  rand: Rand;
  sleep: (ms: number) => Promise<void>;
  policy: RefreshPolicy;
  /** This process's lease owner id; each attempt's lease token starts with it. */
  ownerId: string;
  heldPairs: HeldPairs;
  alerts?: AlertSink;
  onOutcome?: (event: OutcomeEvent) => void;
  /** The stored pair or status of a user changed (rotated, held pair written, reconnect): caches drop it. */
  onPairChanged?: (userUlid: string) => void;
  /** Fleet-wide gates before every token call (src/fleet); absent = always open. */
  breaker?: ConfigBreaker;
  budget?: CallBudget;
  /** Kinds whose Cal.com client is not configured: their refreshes fail before any call (client-guard.ts). */
  unconfiguredKinds?: readonly CalTokenKind[];
  /** Set by close(): stop retrying writes, hand held pairs over, start nothing new. */
  closing: { value: boolean };
}

/** One attempt's lease: its token (unique per attempt) and when it ends by this process's clock (an estimate). */
export interface AttemptLease {
  readonly token: string;
  endsAt: number;
}

export interface Attempt {
  readonly ctx: RefreshContext;
  readonly req: RefreshRequest;
  /** The row as the lease read it (tokens decrypted). */
  readonly token: TokenRecord;
  readonly started: Date;
  readonly lease: AttemptLease;
}

export function failed(token: TokenRecord | null, error: Failure, retryAfterMs?: number): RefreshOutcome {
  return retryAfterMs === undefined ? { ok: false, token, error } : { ok: false, token, error, retryAfterMs };
}

/** A failure that followed a Cal.com call: what Cal.com answered and when the row is due again ride along. */
export function failedAfterCall(
  token: TokenRecord,
  error: Failure,
  details: { calcom: CalcomAnswer; retryAt?: Date; retryAfterMs?: number },
): RefreshOutcome {
  return {
    ok: false,
    token,
    error,
    calcom: details.calcom,
    ...(details.retryAt ? { retryAt: details.retryAt } : {}),
    ...(details.retryAfterMs !== undefined ? { retryAfterMs: details.retryAfterMs } : {}),
  };
}

export function reconnectRequired(token: TokenRecord): RefreshOutcome {
  return failed(token, failure("reconnectRequired"));
}

/** Reads the row, mapping a storage failure or a missing row to an outcome instead of a throw. */
export async function readToken(ctx: RefreshContext, userUlid: string): Promise<TokenRecord | RefreshOutcome> {
  try {
    const token = await ctx.store.get(userUlid);
    return token ?? failed(null, failure("notFound"));
  } catch (err) {
    return failed(null, failureFromError(err, "storeUnavailable"));
  }
}

export function isRecord(v: TokenRecord | RefreshOutcome): v is TokenRecord {
  return "userUlid" in v;
}

/** Another caller settled this user: report the row as it is now. */
export async function settledByOther(ctx: RefreshContext, userUlid: string): Promise<RefreshOutcome> {
  const current = await readToken(ctx, userUlid);
  if (!isRecord(current)) return current;
  if (current.status === "RECONNECT_REQUIRED") return reconnectRequired(current);
  return { ok: true, how: "by_other", token: current };
}
