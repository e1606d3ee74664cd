import type { AlertSink, CallBudget, ConfigBreaker, HeldPair, HeldPairStore, TokenRecord, TokenStore } from "../../../src/core/ports.js";
import type { TokenPair } from "../../../src/core/types.js";
import { createLogger } from "../../../src/log/logger.js";
import { createRefresher, type Refresher, type RefreshPolicy } from "../../../src/refresh/refresher.js";
import type { OutcomeEvent, RefreshOutcome, RefreshRequest } from "../../../src/refresh/types.js";
import { createInMemoryTokenStore, type InMemoryTokenStore, type SeedRecord } from "../../fakes/in-memory-token-store.js";
import { createScriptedCalcomApi } from "../../fakes/scripted-calcom-api.js";

export const USER = "01HZX3K8V2Q7W9M4T6R5Y0AB1C";
export const USER_2 = "01HZX3K8V2Q7W9M4T6R5Y0AB2D";
export const T0 = new Date("2030-01-01T00:00:00.000Z");
export const at = (ms: number) => new Date(T0.getTime() + ms);

/**
 * rand() is 0.5: backoff(n) = 3 750 ms · 2^n, poll sleeps 40 ms, and for an active user (the seeded
 * one) nextRefreshAt = expiry − 330 s. The grant policy is the production default (an idle user's plan:
 * managed parked 30 d ahead; OAuth2 kept alive at refresh-token expiry − 3 d − 0.5 · 2 d).
 */
export const POLICY: RefreshPolicy = {
  leaseMs: 30_000,
  callLeaseMs: 30_000,
  minIntervalMs: 0,
  leadMs: 5 * 60_000,
  jitterMs: 60_000,
  keepFreshWindowMs: 5 * 60_000,
  keepAliveLeadMs: 3 * 86_400_000,
  keepAliveJitterMs: 2 * 86_400_000,
  refreshTokenAtRiskMs: 86_400_000,
  parkMs: 30 * 86_400_000,
  failureWindowMs: 60 * 60_000,
  pollIntervalMs: 40,
  persistAttempts: 6,
  persistRetryBaseMs: 250,
};

export type AlertKind = "refreshFailing" | "reconnectRequired" | "recovered" | "callsSuspended" | "callsResumed";

export function recordingAlerts() {
  const calls: { kind: AlertKind; input: Record<string, unknown> }[] = [];
  let failure: Error | null = null;
  const record = (kind: AlertKind) => async (input: object) => {
    calls.push({ kind, input: { ...input } });
    if (failure) throw failure;
  };
  const sink: AlertSink = {
    refreshFailing: record("refreshFailing"),
    reconnectRequired: record("reconnectRequired"),
    recovered: record("recovered"),
    callsSuspended: record("callsSuspended"),
    callsResumed: record("callsResumed"),
  };
  return {
    sink,
    calls,
    kinds: () => calls.map((c) => c.kind),
    failWith: (err: Error) => {
      failure = err;
    },
  };
}

/** A HeldPairStore like the Redis one: `raw` identifies a record, remove deletes only that exact one. */
export function memoryHeldPairStore(initial: HeldPair[] = []) {
  const pairs = new Map<string, HeldPair>();
  let n = 0;
  const put = (h: HeldPair) => {
    const stored = { ...h, raw: `raw_${++n}` };
    pairs.set(h.userUlid, stored);
    return stored;
  };
  for (const h of initial) put(h);
  const removed: HeldPair[] = [];
  const store: HeldPairStore = {
    put: async (h) => put(h),
    get: async (u) => pairs.get(u) ?? null,
    list: async (limit) => [...pairs.values()].slice(0, limit),
    remove: async (h) => {
      removed.push(h);
      if (pairs.get(h.userUlid)?.raw === h.raw) pairs.delete(h.userUlid);
    },
  };
  return { store, pairs, removed };
}

export interface HarnessOptions {
  policy?: Partial<RefreshPolicy>;
  rand?: () => number;
  /** Wrap the store the refresher sees (the test keeps the raw one for seeding and peeking). */
  wrapStore?: (s: InMemoryTokenStore) => TokenStore;
  alerts?: boolean;
  heldPairStore?: HeldPairStore;
  /** Replaces the recording outcome hook (e.g. with one that throws). */
  onOutcome?: (e: OutcomeEvent) => void;
  /** Fleet gates (test/fakes/in-memory-fleet.ts); absent = always open, as in the refresher. */
  breaker?: ConfigBreaker;
  budget?: CallBudget;
}

export function harness(opts: HarnessOptions = {}) {
  const now = new Date(T0.getTime()); // the mutable clock
  const clock = () => new Date(now.getTime());
  const advance = (ms: number) => void now.setTime(now.getTime() + ms);
  const sleeps: number[] = [];
  /** Run once each, in order, at the matching sleep (after the clock moved): "meanwhile" in other processes. */
  const duringSleep: (() => unknown)[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    advance(ms);
    await duringSleep.shift()?.();
  };
  const store = createInMemoryTokenStore({ clock });
  const calcom = createScriptedCalcomApi();
  const alerts = recordingAlerts();
  const events: OutcomeEvent[] = [];
  const policy = { ...POLICY, ...opts.policy };
  const build = (): Refresher =>
    createRefresher({
      store: opts.wrapStore ? opts.wrapStore(store) : store,
      calcom,
      logger: createLogger({ level: "silent" }),
      clock,
      rand: opts.rand ?? (() => 0.5),
      sleep,
      policy,
      ...(opts.alerts === false ? {} : { alerts: alerts.sink }),
      onOutcome: opts.onOutcome ?? ((e) => events.push(e)),
      ...(opts.heldPairStore ? { heldPairStore: opts.heldPairStore } : {}),
      ...(opts.breaker ? { breaker: opts.breaker } : {}),
      ...(opts.budget ? { budget: opts.budget } : {}),
    });
  const refresher = build();

  /**
   * A managed user with calUserId 42, access token expiring in a minute, no failures, who used it a
   * minute ago (active: after a refresh the next one is planned ahead of expiry, not parked).
   */
  const seed = (over: Partial<SeedRecord> = {}): TokenRecord =>
    store.seed({
      userUlid: USER,
      kind: "managed",
      calUserId: 42,
      accessToken: "at_1",
      refreshToken: "rt_1",
      accessTokenExpiresAt: at(60_000),
      nextRefreshAt: T0,
      createdAt: at(-86_400_000),
      updatedAt: at(-86_400_000),
      lastUsedAt: at(-60_000),
      ...over,
    });

  const refresh = (req: Partial<RefreshRequest> = {}) => refresher.refresh({ userUlid: USER, trigger: "worker", ...req });

  /** Another writer's moves, straight on the store (no lease of ours involved). */
  const other = {
    reconnect: (pair: Partial<TokenPair> = {}) =>
      store.save({
        userUlid: USER,
        kind: "managed",
        calUserId: 42,
        pair: pairOf({ accessToken: "at_reconnected", refreshToken: "rt_reconnected", ...pair }),
        nextRefreshAt: at(3_000_000),
        now: clock(),
      }),
  };

  /** "us" for any attempt of this harness's refresher (lease tokens are `${ownerId}:${n}`), else as stored. */
  function leaseOwnerOf(owner: string | null): string | null {
    if (owner === null) return null;
    return owner.startsWith(`${refresher.ownerId}:`) ? "us" : owner;
  }

  function row() {
    const r = store.peek(USER);
    if (!r) return null;
    return {
      version: r.version,
      status: r.status,
      accessToken: r.accessToken,
      refreshToken: r.refreshToken,
      failureCount: r.failureCount,
      rotationUncertain: r.rotationUncertain,
      lastFailureCode: r.lastFailureCode,
      nextRefreshInMs: r.nextRefreshAt.getTime() - now.getTime(),
      leaseOwner: leaseOwnerOf(r.leaseOwner),
    };
  }

  /** Everything a refresh leaves behind, in one comparable value. */
  function observe() {
    return {
      row: row(),
      audits: store.audits(USER).map((a) => ({ outcome: a.outcome, errorCode: a.errorCode, version: a.version })),
      calls: calcom.calls(),
      alerts: alerts.kinds(),
      events: events.map((e) => ({ outcome: e.outcome, errorCode: e.errorCode })),
    };
  }

  return {
    now,
    clock,
    advance,
    sleeps,
    duringSleep,
    store,
    calcom,
    alerts,
    events,
    policy,
    refresher,
    build,
    seed,
    refresh,
    other,
    row,
    observe,
  };
}

export type Harness = ReturnType<typeof harness>;

export function pairOf(over: Partial<TokenPair> = {}): TokenPair {
  return { accessToken: "at_x", refreshToken: "rt_x", accessTokenExpiresAt: at(3_600_000), refreshTokenExpiresAt: null, ...over };
}

/** The outcome without its token record: ok/how + access token + version, or the failure. */
export type OutcomeSummary =
  | { ok: true; how: string; accessToken: string; version: number }
  | { ok: false; code: string; retryable: boolean; retryAfterMs: number | undefined; hasToken: boolean };

export function summary(o: RefreshOutcome): OutcomeSummary {
  if (o.ok) return { ok: true, how: o.how, accessToken: o.token.accessToken, version: o.token.version };
  return { ok: false, code: o.error.code, retryable: o.error.retryable, retryAfterMs: o.retryAfterMs, hasToken: o.token !== null };
}
