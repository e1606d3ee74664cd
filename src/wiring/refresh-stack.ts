/**
 * The refresh use case and what it needs, built from one Config. Shared by the composition roots
 * that refresh tokens (the on-demand client, src/wiring/cal-token-client.ts, and the worker,
 * src/wiring/worker-app.ts), so both wire the store, the Cal.com API, the held pairs and the policy
 * the same way.
 *
 * Every resource built here registers its closer on the caller's releasers stack as it is created;
 * an injected one (store, calcom) is not closed. Closing runs newest first: the refresher (waits for
 * refreshes in flight, then flushes held pairs), then the Cal.com sockets, then the held-pair Redis
 * client. The database client belongs to the caller, which registered it earlier, so it closes later.
 * Starts no timers: the root starts `refresher.heldPairs` flushing.
 */
import { type Config, grantPolicy } from "../config/config.js";
import type { AlertSink, CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { Clock, Rand } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import { fleetRedis } from "../queue/connection.js";
import { createRedisCallBudget } from "../fleet/call-budget.js";
import { createRedisConfigBreaker } from "../fleet/config-breaker.js";
import { publishPairChange } from "../fleet/pair-changes.js";
import { createRefresher, DEFAULT_REFRESH_POLICY, type Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createRedisHeldPairStore } from "../store/held-pair-store.js";
import type { PrismaClient } from "../store/prisma.js";
import { createTokenCipher } from "../store/token-cipher.js";
import { createTokenStore } from "../store/token-store.js";
import { calcomTokenApiFromConfig } from "./calcom-from-config.js";
import { unconfiguredKinds } from "./client-check.js";
import type { Releasers } from "./releasers.js";

/** Covers the round trip between extending the lease and the request leaving, and a GC pause. */
const CALL_LEASE_MARGIN_MS = 2_000;

export interface RefreshStack {
  refresher: Refresher;
  store: TokenStore;
  /** The Cal.com API the refresher calls (the connect helper exchanges codes through it too). */
  calcom: CalcomTokenApi;
  /** Says a user's pair changed outside the refresher (a save): this process's hook and the fleet. */
  pairChanged(userUlid: string): void;
}

export interface RefreshStackDeps {
  config: Config;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  /** Where the stack registers the closers of what it creates. */
  releasers: Releasers;
  /** Needed unless `store` is given. */
  prisma?: PrismaClient;
  store?: TokenStore;
  calcom?: CalcomTokenApi;
  alerts?: AlertSink;
  onOutcome?: (event: OutcomeEvent) => void;
  /** Called (in this process) when a user's pair changes here; every change is also published fleet-wide. */
  onPairChanged?: (userUlid: string) => void;
  policy?: Partial<typeof DEFAULT_REFRESH_POLICY>;
}

export function createRefreshStack(deps: RefreshStackDeps): RefreshStack {
  const { config, logger, releasers } = deps;
  const cipher = createTokenCipher(config.encryptionKeys);
  const store = deps.store ?? createTokenStore({ prisma: deps.prisma as PrismaClient, cipher });
  // Fleet-wide state in Redis: held pairs (a pair this process could not write survives its crash),
  // the configuration breaker and the shared token-call budget.
  const redis = fleetRedis(config);
  releasers.add("fleet redis", () => redis.disconnect());
  const prefix = config.queuePrefix;
  const calcom = deps.calcom ?? ownCalcom(config, logger, releasers);
  /** Tells this process (hook) and the fleet (pub/sub) that a user's stored pair or status changed. */
  const pairChanged = (userUlid: string): void => {
    deps.onPairChanged?.(userUlid);
    publishPairChange(redis, prefix, userUlid).catch((err: unknown) => logger.debug({ userUlid, err }, "pair change not published"));
  };
  const refresher = createRefresher({
    store,
    calcom,
    heldPairStore: createRedisHeldPairStore({ redis, prefix, cipher, logger, clock: deps.clock }),
    breaker: createRedisConfigBreaker({ redis, prefix }),
    budget: createRedisCallBudget({ redis, prefix, ratePerMinute: config.refresh.ratePerMinute }),
    logger,
    clock: deps.clock,
    rand: deps.rand,
    policy: {
      ...DEFAULT_REFRESH_POLICY,
      ...deps.policy,
      leaseMs: config.refresh.leaseMs,
      // The lease before each call outlives the call (HTTP timeout) with a margin for the round trip.
      callLeaseMs: config.calcom.timeoutMs + CALL_LEASE_MARGIN_MS,
      minIntervalMs: config.refresh.minIntervalMs,
      ...grantPolicy(config),
    },
    // A kind without its client fails its refreshes with a coded error, never a call with nothing.
    unconfiguredKinds: unconfiguredKinds(config),
    ...(deps.alerts ? { alerts: deps.alerts } : {}),
    ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
    // Every process that changes a pair says so, so on-demand clients drop their cached token.
    onPairChanged: (userUlid) => pairChanged(userUlid),
  });
  // Flushes held pairs while the database client (closed later) is still open.
  releasers.add("refresher", () => refresher.close());
  return { refresher, store, calcom, pairChanged };
}

function ownCalcom(config: Config, logger: Logger, releasers: Releasers): CalcomTokenApi {
  const api = calcomTokenApiFromConfig(config, logger);
  releasers.add("cal.com api", () => api.close());
  return api;
}
