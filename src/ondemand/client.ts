/**
 * `createCalTokenClient`: the composition root of the on-demand module. Builds every dependency
 * explicitly from one parsed Config (or takes injected ones, for tests) and owns what it built.
 */
import { loadConfig, type Config } from "../config/config.js";
import type { CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { Clock, Rand } from "../core/types.js";
import { createAlertSink } from "../events/alert-sink.js";
import { createLogger, type Logger } from "../log/logger.js";
import { createRefreshStack } from "../main/refresh-stack.js";
import { createRefreshProducer } from "../queue/producer.js";
import type { DEFAULT_REFRESH_POLICY, Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createEventStore } from "../store/event-store.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
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
  // Alerts raised on request paths go to the outbox; the worker's relay delivers them.
  const alerts = prisma ? createAlertSink({ eventStore: createEventStore({ prisma }), relay: null, logger }) : undefined;
  const stack = createRefreshStack({
    config,
    logger,
    clock,
    rand,
    ...(prisma ? { prisma } : {}),
    ...(options.store ? { store: options.store } : {}),
    ...(options.calcom ? { calcom: options.calcom } : {}),
    ...(alerts ? { alerts } : {}),
    ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
    ...(options.refreshPolicy ? { policy: options.refreshPolicy } : {}),
  });
  const { refresher, store } = stack;
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
        await stack.close();
        await producer.close();
        if (ownsPrisma && prisma) await prisma.$disconnect();
      })();
      return closing;
    },
  };
}
