/**
 * The refresh use case and what it needs, built from one Config. Shared by the two composition roots
 * that refresh tokens: the worker (src/main/worker-app.ts) and the on-demand client
 * (src/ondemand/client.ts), so both wire the store, the Cal.com client, the recovery records and the
 * policy the same way.
 */
import { createCalcomClient, type CalcomClient } from "../calcom/client.js";
import type { Config } from "../config/config.js";
import type { AlertSink, CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { Clock, Rand } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import { recoveryRedis } from "../queue/connection.js";
import { createRedisRecoveryStore } from "../queue/recovery-store.js";
import { createRefresher, DEFAULT_REFRESH_POLICY, type Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import type { PrismaClient } from "../store/prisma.js";
import { createTokenCipher } from "../store/token-cipher.js";
import { createTokenStore } from "../store/token-store.js";

export function createCalcomClientFromConfig(config: Config, logger: Logger): CalcomClient {
  const c = config.calcom;
  return createCalcomClient({
    baseUrl: c.apiUrl,
    clientId: c.clientId,
    clientSecret: c.clientSecret,
    oauth2: c.oauth2,
    timeoutMs: c.timeoutMs,
    logger,
  });
}

export interface RefreshStack {
  refresher: Refresher;
  store: TokenStore;
  /** Flushes held pairs (refresher.close), then closes what the stack created. */
  close(): Promise<void>;
}

export function createRefreshStack(deps: {
  config: Config;
  logger: Logger;
  clock: Clock;
  rand: Rand;
  /** Needed unless `store` is given. */
  prisma?: PrismaClient;
  store?: TokenStore;
  calcom?: CalcomTokenApi;
  alerts?: AlertSink;
  onOutcome?: (event: OutcomeEvent) => void;
  policy?: Partial<typeof DEFAULT_REFRESH_POLICY>;
}): RefreshStack {
  const { config, logger } = deps;
  const cipher = createTokenCipher(config.encryptionKeys);
  const store = deps.store ?? createTokenStore({ prisma: deps.prisma as PrismaClient, cipher });
  const ownCalcom = deps.calcom ? null : createCalcomClientFromConfig(config, logger);
  // Shared recovery records (Redis), so a pair this process could not write survives its crash.
  const recoveryClient = recoveryRedis(config.redisUrl);
  const refresher = createRefresher({
    store,
    calcom: deps.calcom ?? (ownCalcom as CalcomClient),
    recovery: createRedisRecoveryStore({ redis: recoveryClient, prefix: config.queuePrefix, cipher }),
    logger,
    clock: deps.clock,
    rand: deps.rand,
    policy: {
      ...DEFAULT_REFRESH_POLICY,
      ...deps.policy,
      leaseMs: config.refresh.leaseMs,
      leadMs: config.refresh.leadMs,
      jitterMs: config.refresh.jitterMs,
    },
    ...(deps.alerts ? { alerts: deps.alerts } : {}),
    ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
  });
  return {
    refresher,
    store,
    async close() {
      await refresher.close();
      ownCalcom?.close();
      recoveryClient.disconnect();
    },
  };
}
