/**
 * The refresh use case: the only code that calls Cal.com's token endpoints and the only code that
 * writes a rotated pair (architecture §2). Every path (on-demand, worker, CLI) comes through here.
 *
 * Single flight (invariant 1): concurrent callers in this process share one promise; across processes
 * the authority is the lease on the token row, taken with one atomic UPDATE that also re-reads it.
 * Waiters poll until the row's version moves (someone refreshed) or the lease lapses.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { CalRefreshResult } from "../core/calcom-result.js";
import { ERROR_CODES, TokenDecryptError, isAppError } from "../core/errors.js";
import { backoffDelayMs, computeNextRefreshAt } from "../core/policy.js";
import type { AlertSink, AuditOutcome, CalcomTokenApi, RecoveryStore, TokenRecord, TokenStore } from "../core/ports.js";
import type { Clock, Rand, TokenPair } from "../core/types.js";
import { componentLogger, type Logger } from "../log/logger.js";
import { createPendingWrites, type PendingWrites } from "./pending-writes.js";
import type { OutcomeEvent, RefreshFailure, RefreshOutcome, RefreshRequest } from "./types.js";
import { withTimeout } from "../core/timeout.js";

export interface RefreshPolicy {
  /** How long a lease lasts; must outlive refresh + force-refresh HTTP timeouts. */
  leaseMs: number;
  leadMs: number;
  jitterMs: number;
  /** Failures are counted at most once per window (a flapping Cal.com does not exhaust users). */
  failureWindowMs: number;
  pollIntervalMs: number;
  /** Retries of the database write of a rotated pair before it is held in memory. */
  persistAttempts: number;
  persistRetryBaseMs: number;
}

export const DEFAULT_REFRESH_POLICY: Omit<RefreshPolicy, "leaseMs" | "leadMs" | "jitterMs"> = {
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
  /** Status flips → webhook events (src/events). Optional: the on-demand client works without it. */
  alerts?: AlertSink;
  /** Shared recovery records for pairs the database could not take (see src/queue/recovery-store.ts). */
  recovery?: RecoveryStore;
}

export interface Refresher {
  refresh(req: RefreshRequest): Promise<RefreshOutcome>;
  /** A rotated pair held in memory because the database was down (see pending-writes.ts). */
  heldPair(userUlid: string): TokenPair | undefined;
  readonly pending: PendingWrites;
  readonly ownerId: string;
  close(): Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createRefresher(deps: RefresherDeps): Refresher {
  const log = componentLogger(deps.logger, "tokenService");
  const sleep = deps.sleep ?? defaultSleep;
  const { store, calcom, clock, rand, policy } = deps;
  const ownerId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  const inFlight = new Map<string, Promise<RefreshOutcome>>();
  /** When this process last took or extended each user's lease (single flight: one entry per user). */
  const leaseTakenAt = new Map<string, number>();
  const pending = createPendingWrites({
    store,
    logger: log,
    clock,
    ...(deps.recovery ? { recovery: deps.recovery } : {}),
    onPersisted: async (w, meta) => {
      await audit({ userUlid: w.userUlid, trigger: w.trigger, outcome: "RECOVERED", version: meta.version }, w.heldSince);
      await alert("recovered", (a) => a.recovered({ userUlid: w.userUlid, kind: meta.kind, now: clock() }));
    },
  });
  pending.start(1_000);

  const fail = (code: RefreshFailure["code"], message: string, retryable: boolean) => ({ code, message, retryable });

  function emitOutcome(e: { userUlid: string; trigger: string; outcome: AuditOutcome; errorCode?: string }, started: Date): number {
    const durationMs = clock().getTime() - started.getTime();
    deps.onOutcome?.({
      userUlid: e.userUlid,
      outcome: e.outcome,
      trigger: e.trigger as OutcomeEvent["trigger"],
      errorCode: e.errorCode ?? null,
      durationMs,
    });
    return durationMs;
  }

  async function audit(
    e: { userUlid: string; trigger: string; outcome: AuditOutcome; errorCode?: string; version?: number },
    started: Date,
  ): Promise<void> {
    const durationMs = emitOutcome(e, started);
    try {
      await store.insertAudit({ ...e, errorCode: e.errorCode ?? null, version: e.version ?? null, durationMs });
    } catch (err) {
      // The audit trail must never cost a user their token.
      log.warn({ userUlid: e.userUlid, outcome: e.outcome, err }, "audit row not written");
    }
  }

  /** Alerts are best effort: an outbox or queue problem must never cost a user their token. */
  async function alert(what: string, fn: (sink: AlertSink) => Promise<void>): Promise<void> {
    if (!deps.alerts) return;
    try {
      await fn(deps.alerts);
    } catch (err) {
      log.warn({ err, alert: what }, "alert not recorded");
    }
  }

  /** Read the row, mapping storage failures to outcomes instead of throws. */
  async function read(userUlid: string): Promise<TokenRecord | RefreshOutcome> {
    try {
      const token = await store.get(userUlid);
      if (token) return token;
      return { ok: false, token: null, error: fail(ERROR_CODES.notFound, "no Cal.com tokens stored for this user", false) };
    } catch (err) {
      return { ok: false, token: null, error: storageFailure(err) };
    }
  }

  async function run(req: RefreshRequest): Promise<RefreshOutcome> {
    const started = clock();
    // A pair rotated but not yet written (database outage; here or in a process that died) is the
    // user's live pair: write it before anything else, never refresh over it with the dead token the
    // row still holds. One Redis GET per refresh, never on the fresh-token path.
    if (!pending.get(req.userUlid) && deps.recovery) {
      const record = await withTimeout(deps.recovery.get(req.userUlid), 1_000, () => new Error("recovery store timeout")).catch(() => null);
      if (record) pending.adopt(record);
    }
    if (pending.get(req.userUlid)) {
      await pending.flush();
      const held = pending.get(req.userUlid);
      if (held) {
        const stale = req.knownToken ?? (await read(req.userUlid));
        if (!isRecord(stale)) return stale;
        return { ok: true, how: "by_other", token: { ...stale, ...held.pair, nextRefreshAt: held.nextRefreshAt } };
      }
      return settledByOther(req.userUlid);
    }
    // The on-demand path just read the row; reusing it saves a round trip (the lease re-reads anyway).
    const first = req.knownToken ?? (await read(req.userUlid));
    if (!isRecord(first)) return first;
    if (first.status === "RECONNECT_REQUIRED") return reconnectRequired(first);
    if (req.staleAccessToken !== undefined && first.accessToken !== req.staleAccessToken) {
      return { ok: true, how: "by_other", token: first };
    }
    const observedVersion = req.observedVersion ?? first.version;
    const giveUpAt = started.getTime() + policy.leaseMs + 5_000;

    for (;;) {
      const now = clock();
      let lease;
      try {
        lease = await store.acquireLease(req.userUlid, ownerId, new Date(now.getTime() + policy.leaseMs), now);
      } catch (err) {
        return { ok: false, token: first, error: storageFailure(err) };
      }
      if (lease.kind === "missing") {
        return { ok: false, token: null, error: fail(ERROR_CODES.notFound, "no Cal.com tokens stored for this user", false) };
      }
      if (lease.kind === "held") {
        if (lease.meta.version !== observedVersion) return settledByOther(req.userUlid);
        if (clock().getTime() > giveUpAt) {
          return { ok: false, token: first, error: fail(ERROR_CODES.leaseTimeout, "another process holds the refresh lease", true) };
        }
        await sleep(policy.pollIntervalMs * (0.5 + rand()));
        continue;
      }
      const token = lease.token;
      leaseTakenAt.set(req.userUlid, now.getTime());
      // The lease re-read the row: someone may have finished a refresh while we decided or waited.
      if (token.version !== observedVersion || token.status === "RECONNECT_REQUIRED") {
        await release(req.userUlid);
        return token.status === "RECONNECT_REQUIRED" ? reconnectRequired(token) : { ok: true, how: "by_other", token };
      }
      // A refresh attempt failed while we waited for its lease: share its failure instead of hammering Cal.com.
      if (token.lastFailureAt && token.lastFailureAt.getTime() >= started.getTime()) {
        await release(req.userUlid);
        return {
          ok: false,
          token,
          error: fail(
            (token.lastFailureCode as RefreshFailure["code"] | null) ?? ERROR_CODES.transient,
            "a concurrent refresh attempt just failed",
            true,
          ),
        };
      }
      return refreshHoldingLease(token, req, started);
    }
  }

  /**
   * Extends our lease before a step that would otherwise run past it (the force-refresh after a
   * rejection). `false` means another owner took it: we must not call Cal.com for this user now.
   */
  async function extendLease(userUlid: string): Promise<boolean> {
    const now = clock();
    try {
      const res = await store.acquireLease(userUlid, ownerId, new Date(now.getTime() + policy.leaseMs), now);
      if (res.kind !== "acquired") return false;
      leaseTakenAt.set(userUlid, now.getTime());
      return true;
    } catch {
      return false;
    }
  }

  async function refreshHoldingLease(token: TokenRecord, req: RefreshRequest, started: Date): Promise<RefreshOutcome> {
    let settled = false;
    try {
      const result =
        token.kind === "managed" ? await calcom.refreshManaged(token.refreshToken) : await calcom.refreshOAuth2(token.refreshToken);
      const outcome = await handleResult(token, req, started, result, "REFRESHED");
      settled = true;
      return outcome;
    } finally {
      // Every settled path already released the lease in its own write; this covers throws.
      if (!settled) await release(token.userUlid);
    }
  }

  async function handleResult(
    token: TokenRecord,
    req: RefreshRequest,
    started: Date,
    result: CalRefreshResult,
    success: "REFRESHED" | "FORCE_REFRESHED",
  ): Promise<RefreshOutcome> {
    switch (result.kind) {
      case "refreshed":
        return persist(token, req, started, result.pair, success);
      case "rejected":
        if (success === "FORCE_REFRESHED") return reconnect(token, req, started, `force-refresh rejected (${result.status})`);
        return handleRejection(token, req, started, result.status);
      case "rate_limited":
        return transientFailure(token, req, started, ERROR_CODES.rateLimited, "Cal.com rate limit reached", false, result.resetMs);
      case "transient":
        return transientFailure(
          token,
          req,
          started,
          result.reason === "timeout" ? ERROR_CODES.timeout : ERROR_CODES.transient,
          `Cal.com ${result.reason}${result.status ? ` (${result.status})` : ""}`,
          result.mayHaveRotated,
        );
      case "malformed":
        return transientFailure(token, req, started, ERROR_CODES.malformed, `Cal.com answered ${result.status} with an unusable body`, result.mayHaveRotated);
      case "config_error": {
        await release(token.userUlid);
        log.error({ userUlid: token.userUlid, status: result.status }, "Cal.com rejected our client credentials");
        await audit({ userUlid: token.userUlid, trigger: req.trigger, outcome: "CONFIG_ERROR", errorCode: ERROR_CODES.calcomConfig }, started);
        return { ok: false, token, error: fail(ERROR_CODES.calcomConfig, `Cal.com rejected the client credentials (${result.status})`, false) };
      }
    }
  }

  /**
   * Invariant 3: a 400/404 is often a lost race, not a dead grant. Re-read first; if the refresh token
   * is still the one Cal.com rejected, a managed user is recovered with force-refresh, an OAuth2 user
   * must reconnect.
   */
  async function handleRejection(token: TokenRecord, req: RefreshRequest, started: Date, status: number): Promise<RefreshOutcome> {
    const current = await read(token.userUlid);
    if (isRecord(current) && current.version !== token.version) {
      await release(token.userUlid);
      return { ok: true, how: "by_other", token: current };
    }
    if (token.kind === "managed" && token.calUserId !== null) {
      // The force-refresh must also run under the lease, or a second process could rotate meanwhile.
      if (!(await extendLease(token.userUlid))) return settledByOther(token.userUlid);
      log.warn(
        { userUlid: token.userUlid, status, rotationUncertain: token.rotationUncertain },
        token.rotationUncertain ? "refresh token rejected after a lost response; force-refreshing" : "refresh token rejected; force-refreshing",
      );
      const forced = await calcom.forceRefreshManaged(token.calUserId);
      // The old refresh token is dead either way now: a failed force-refresh leaves the rotation uncertain.
      return handleResult({ ...token, rotationUncertain: true }, req, started, forced, "FORCE_REFRESHED");
    }
    return reconnect(token, req, started, `refresh token rejected (${status})`);
  }

  async function reconnect(token: TokenRecord, req: RefreshRequest, started: Date, why: string): Promise<RefreshOutcome> {
    let marked: boolean;
    try {
      marked = await store.markReconnectRequired({
        userUlid: token.userUlid,
        expectedVersion: token.version,
        owner: ownerId,
        code: ERROR_CODES.reconnectRequired,
        now: clock(),
      });
    } catch (err) {
      await release(token.userUlid);
      return { ok: false, token, error: storageFailure(err) };
    }
    // The row moved on meanwhile (the user reconnected): their new pair stands; no alert, no audit.
    if (!marked) return settledByOther(token.userUlid);
    log.warn({ userUlid: token.userUlid, kind: token.kind }, `user must reconnect Cal.com: ${why}`);
    await audit({ userUlid: token.userUlid, trigger: req.trigger, outcome: "RECONNECT_REQUIRED", errorCode: ERROR_CODES.reconnectRequired }, started);
    await alert("reconnect_required", (a) =>
      a.reconnectRequired({ userUlid: token.userUlid, kind: token.kind, code: ERROR_CODES.reconnectRequired, now: clock() }),
    );
    return reconnectRequired({ ...token, status: "RECONNECT_REQUIRED" });
  }

  async function transientFailure(
    token: TokenRecord,
    req: RefreshRequest,
    started: Date,
    code: RefreshFailure["code"],
    message: string,
    mayHaveRotated: boolean,
    retryAfterMs?: number,
  ): Promise<RefreshOutcome> {
    const now = clock();
    // The failure count moves once per window, so the delay also grows with the streak's age: a long
    // outage is retried less and less often (the sweep re-queues at this time, overriding job backoff).
    const streakMs = token.firstFailureAt ? now.getTime() - token.firstFailureAt.getTime() : 0;
    const delay = Math.max(retryAfterMs ?? 0, backoffDelayMs(token.failureCount, rand), Math.min(streakMs, 5 * 60_000));
    try {
      await store.recordFailure({
        userUlid: token.userUlid,
        expectedVersion: token.version,
        owner: ownerId,
        code,
        rotationUncertain: mayHaveRotated || token.rotationUncertain,
        nextRefreshAt: new Date(now.getTime() + delay),
        failureWindowMs: policy.failureWindowMs,
        now,
      });
    } catch (err) {
      await release(token.userUlid);
      log.warn({ userUlid: token.userUlid, err }, "failure bookkeeping not written");
    }
    log.warn({ userUlid: token.userUlid, code, mayHaveRotated, retryInMs: delay }, "refresh failed; will retry");
    await audit({ userUlid: token.userUlid, trigger: req.trigger, outcome: "FAILED_TRANSIENT", errorCode: code }, started);
    await alert("refresh_failing", (a) =>
      a.refreshFailing({
        userUlid: token.userUlid,
        kind: token.kind,
        code,
        accessTokenExpiresAt: token.accessTokenExpiresAt,
        firstFailureAt: token.firstFailureAt ?? now,
        now,
      }),
    );
    const out: RefreshOutcome = { ok: false, token, error: fail(code, message, true) };
    if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs;
    return out;
  }

  /**
   * Invariant 2: persist first, compare-and-swap on the version we read. A failed write is retried;
   * if the database stays down the pair is held in memory and flushed later, never dropped.
   */
  async function persist(
    token: TokenRecord,
    req: RefreshRequest,
    started: Date,
    pair: TokenPair,
    outcome: "REFRESHED" | "FORCE_REFRESHED",
  ): Promise<RefreshOutcome> {
    const nextRefreshAt = computeNextRefreshAt(pair.accessTokenExpiresAt, clock(), policy.leadMs, policy.jitterMs, rand);
    const how = outcome === "REFRESHED" ? "refreshed" : "force_refreshed";
    const leaseDeadline = (leaseTakenAt.get(token.userUlid) ?? started.getTime()) + policy.leaseMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await store.saveRotated({
          userUlid: token.userUlid,
          expectedVersion: token.version,
          owner: ownerId,
          pair,
          nextRefreshAt,
          now: clock(),
          audit: { outcome, trigger: req.trigger, durationMs: clock().getTime() - started.getTime() },
        });
        if (!res.ok) {
          // Someone else wrote a newer pair (e.g. the user reconnected): theirs wins; never overwrite.
          log.warn({ userUlid: token.userUlid }, "rotated pair lost the compare-and-swap; using the stored one");
          return settledByOther(token.userUlid);
        }
        log.info({ userUlid: token.userUlid, version: res.meta.version, how, trigger: req.trigger }, "token refreshed");
        emitOutcome({ userUlid: token.userUlid, trigger: req.trigger, outcome }, started); // audit row written with the swap
        // Only a user with a failure streak can have an open alert; skip the extra write otherwise.
        if (token.failureCount > 0 || token.rotationUncertain || token.firstFailureAt !== null) {
          await alert("recovered", (a) => a.recovered({ userUlid: token.userUlid, kind: token.kind, now: clock() }));
        }
        return { ok: true, how, token: { ...res.meta, accessToken: pair.accessToken, refreshToken: pair.refreshToken } };
      } catch (err) {
        // Retry only while our lease still covers us; past it another process may act on the old row.
        const leaseLeftMs = leaseDeadline - clock().getTime();
        if (attempt + 1 < policy.persistAttempts && leaseLeftMs > 5_000) {
          log.warn({ userUlid: token.userUlid, attempt, err }, "rotated pair not written yet; retrying");
          await sleep(Math.min(policy.persistRetryBaseMs * 2 ** attempt, 5_000));
          continue;
        }
        await pending.add({
          userUlid: token.userUlid,
          expectedVersion: token.version,
          owner: ownerId,
          pair,
          nextRefreshAt,
          trigger: req.trigger,
          heldSince: started,
        });
        log.error({ userUlid: token.userUlid, err }, "database unavailable: holding the rotated pair in memory until it can be written");
        // The caller can use the new access token now; the write follows when the database is back.
        return { ok: true, how, token: { ...token, ...pair, nextRefreshAt, version: token.version } };
      }
    }
  }

  async function settledByOther(userUlid: string): Promise<RefreshOutcome> {
    const current = await read(userUlid);
    if (!isRecord(current)) return current;
    if (current.status === "RECONNECT_REQUIRED") return reconnectRequired(current);
    return { ok: true, how: "by_other", token: current };
  }

  async function release(userUlid: string): Promise<void> {
    try {
      await store.releaseLease(userUlid, ownerId);
    } catch (err) {
      // It lapses on its own after leaseMs.
      log.warn({ userUlid, err }, "lease not released");
    }
  }

  return {
    ownerId,
    pending,
    heldPair: (userUlid) => pending.get(userUlid)?.pair,
    refresh(req) {
      const existing = inFlight.get(req.userUlid);
      if (existing) return existing;
      const p = run(req).finally(() => {
        inFlight.delete(req.userUlid);
        leaseTakenAt.delete(req.userUlid);
      });
      inFlight.set(req.userUlid, p);
      return p;
    },
    async close() {
      await Promise.allSettled([...inFlight.values()]);
      await pending.close();
    },
  };
}

function isRecord(v: TokenRecord | RefreshOutcome): v is TokenRecord {
  return "userUlid" in v;
}

function reconnectRequired(token: TokenRecord): RefreshOutcome {
  return {
    ok: false,
    token,
    error: { code: ERROR_CODES.reconnectRequired, message: "the user must reconnect their Cal.com account", retryable: false },
  };
}

function storageFailure(err: unknown): RefreshFailure {
  if (err instanceof TokenDecryptError) {
    return { code: ERROR_CODES.decryptFailed, message: "stored tokens could not be decrypted (wrong key or corrupt row)", retryable: false };
  }
  if (isAppError(err)) return { code: err.code, message: err.message, retryable: err.retryable };
  return { code: ERROR_CODES.storeUnavailable, message: "token storage is unavailable", retryable: true };
}
