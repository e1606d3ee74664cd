/**
 * `createCalTokenClient`: the composition root of the on-demand module. Builds every dependency
 * explicitly from one parsed Config (or takes injected ones, for tests) and owns what it built.
 */
import { createCalcomClient } from "../calcom/client.js";
import { loadConfig, type Config } from "../config/config.js";
import type { CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { Clock, Rand } from "../core/types.js";
import { createLogger, type Logger } from "../log/logger.js";
import { createRefresher, DEFAULT_REFRESH_POLICY, type Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createAlertSink } from "../events/alert-sink.js";
import { recoveryRedis } from "../queue/connection.js";
import { createRefreshProducer } from "../queue/producer.js";
import { createRedisRecoveryStore } from "../queue/recovery-store.js";
import { createEventStore } from "../store/event-store.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { createTokenCipher } from "../store/token-cipher.js";
import { createTokenStore } from "../store/token-store.js";
import { createOnDemandService, type OnDemandService } from "./token-service.js";

export interface CalTokenClientOptions {
  /** Parsed configuration; by default read once from `env` (default `process.env`). */
  config?: Config;
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Bring your own Prisma client (not closed by close()). */
  prisma?: PrismaClient;
  calcom?: CalcomTokenApi;
  store?: TokenStore;
  clock?: Clock;
  rand?: Rand;
  onOutcome?: (event: OutcomeEvent) => void;
  /** Overrides for the refresh policy (tests shorten polling and retry delays). */
  refreshPolicy?: Partial<typeof DEFAULT_REFRESH_POLICY>;
  /** Pool size when this client creates its own Prisma client. */
  databasePoolSize?: number;
}

export interface CalTokenClient extends OnDemandService {
  readonly refresher: Refresher;
  readonly config: Config;
  close(): Promise<void>;
}

export function createCalTokenClient(options: CalTokenClientOptions = {}): CalTokenClient {
  const config = options.config ?? loadConfig(options.env ?? process.env);
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const clock = options.clock ?? (() => new Date());
  const rand = options.rand ?? Math.random;
  const ownsPrisma = !options.prisma && !options.store;
  const prisma = options.prisma ?? (ownsPrisma ? createPrisma(config.databaseUrl, { max: options.databasePoolSize ?? 10 }) : undefined);
  const cipher = createTokenCipher(config.encryptionKeys);
  const store = options.store ?? createTokenStore({ prisma: prisma as PrismaClient, cipher });
  // Shared recovery records (Redis), so a pair this process could not write survives its crash.
  const recoveryClient = recoveryRedis(config.redisUrl);
  const recovery = createRedisRecoveryStore({ redis: recoveryClient, prefix: config.queuePrefix, cipher });
  const ownCalcom = options.calcom
    ? null
    : createCalcomClient({
      baseUrl: config.calcom.apiUrl,
      clientId: config.calcom.clientId,
      clientSecret: config.calcom.clientSecret,
      timeoutMs: config.calcom.timeoutMs,
      oauth2: config.calcom.oauth2,
      logger,
    });
  const calcom: CalcomTokenApi = options.calcom ?? (ownCalcom as CalcomTokenApi);
  // Alerts raised on request paths go to the outbox; the worker's relay delivers them.
  const alerts = prisma ? createAlertSink({ eventStore: createEventStore({ prisma }), relay: null, logger }) : undefined;
  const refresher = createRefresher({
    recovery,
    ...(alerts ? { alerts } : {}),
    store,
    calcom,
    logger,
    clock,
    rand,
    policy: {
      ...DEFAULT_REFRESH_POLICY,
      ...options.refreshPolicy,
      leaseMs: config.refresh.leaseMs,
      leadMs: config.refresh.leadMs,
      jitterMs: config.refresh.jitterMs,
    },
    ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
  });
  // Lazy: no Redis connection is opened until the first save or queued refresh.
  const producer = createRefreshProducer({ redisUrl: config.redisUrl, prefix: config.queuePrefix, clock });
  const service = createOnDemandService({
    ...(alerts ? { alerts } : {}),
    producer,
    afterSave: (userUlid, at, lastUsedAt) => producer.schedule(userUlid, at, lastUsedAt),
    store,
    refresher,
    logger,
    clock,
    rand,
    bufferMs: config.refresh.onDemandBufferMs,
    leadMs: config.refresh.leadMs,
    jitterMs: config.refresh.jitterMs,
  });

  let closing: Promise<void> | null = null;
  return {
    ...service,
    refresher,
    config,
    close() {
      closing ??= (async () => {
        await refresher.close();
        await producer.close();
        recoveryClient.disconnect();
        ownCalcom?.close();
        if (ownsPrisma && prisma) await prisma.$disconnect();
      })();
      return closing;
    },
  };
}
