/**
 * `createCalTokenClient`: the composition root of the on-demand module. Builds every dependency
 * explicitly from one parsed Config (or takes injected ones, for tests). Whatever it creates registers
 * its closer as it is created (src/wiring/releasers.ts); an injected Prisma client, store or Cal.com
 * API is not closed. `close()` runs the closers newest first: the refresher (flushes held pairs), the
 * Cal.com sockets, the held-pair Redis client, the refresh producer, then the Prisma client.
 */
import { grantPolicy, loadConfig, type Config } from "../config/config.js";
import type { CalcomTokenApi, TokenStore } from "../core/ports.js";
import type { Clock, Rand } from "../core/types.js";
import { createAlertSink } from "../events/alert-sink.js";
import { componentLogger, createLogger, type Logger } from "../log/logger.js";
import { createOnDemandService, type OnDemandService } from "../ondemand/on-demand-service.js";
import { createRefreshProducer } from "../queue/producer.js";
import type { DEFAULT_REFRESH_POLICY, Refresher } from "../refresh/refresher.js";
import type { OutcomeEvent } from "../refresh/types.js";
import { createEventStore } from "../store/event-store.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { unconfiguredKinds } from "./client-check.js";
import { createRefreshStack } from "./refresh-stack.js";
import { createReleasers, type Releasers } from "./releasers.js";
import { subscribePairChanges } from "../fleet/pair-changes.js";
import { createTokenCache, type TokenCache } from "../ondemand/token-cache.js";
import { subscriberRedis } from "../queue/connection.js";

const REQUEST_PATH_CONNECT_TIMEOUT_MS = 2_000;

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
  const releasers = createReleasers(componentLogger(logger, "onDemand"));
  if (config.notes.length > 0) componentLogger(logger, "onDemand").warn({ notes: config.notes }, "configuration normalised");
  const prisma = options.prisma ?? (options.store ? undefined : ownPrisma(config, options.databasePoolSize ?? 10, releasers));
  // Alerts raised on request paths go to the outbox; the worker's relay delivers them.
  const alerts = prisma ? createAlertSink({ eventStore: createEventStore({ prisma }), relay: null, logger }) : undefined;
  // Lazy: no Redis connection is opened until the first save or queued refresh.
  const producer = createRefreshProducer({ redis: config, prefix: config.queuePrefix, clock });
  releasers.add("refresh producer", () => producer.close());
  const cache = tokenCacheFor(config, releasers, logger);
  const { refresher, store, calcom, pairChanged } = createRefreshStack({
    config,
    logger,
    clock,
    rand,
    releasers,
    ...(prisma ? { prisma } : {}),
    ...(options.store ? { store: options.store } : {}),
    ...(options.calcom ? { calcom: options.calcom } : {}),
    ...(alerts ? { alerts } : {}),
    ...(options.onOutcome ? { onOutcome: options.onOutcome } : {}),
    ...(options.refreshPolicy ? { policy: options.refreshPolicy } : {}),
    ...(cache ? { onPairChanged: (userUlid: string) => cache.tokens.delete(userUlid, clock()) } : {}),
  });
  refresher.heldPairs.start(1_000);
  const service = createOnDemandService({
    ...(alerts ? { alerts } : {}),
    producer,
    afterSave: (userUlid, at, priority) => {
      pairChanged(userUlid);
      return producer.schedule(userUlid, at, priority);
    },
    ...(cache ? { cache } : {}),
    store,
    refresher,
    logger,
    clock,
    rand,
    bufferMs: config.refresh.onDemandBufferMs,
    waitMs: config.refresh.onDemandWaitMs,
    policy: grantPolicy(config),
    // A kind without its client: saves are refused, refreshes fail coded (refresh-stack.ts); no query at creation.
    unconfiguredKinds: unconfiguredKinds(config),
    connect: { calcom, app: config.calcom.oauth2 ? { publicClient: config.calcom.oauth2.clientSecret === null } : null },
  });
  return { ...service, refresher, config, close: () => releasers.closeAll() };
}

/**
 * The hot path from memory (src/ondemand/token-cache.ts), trusted only while this process hears the
 * fleet's pair changes (src/fleet/pair-changes.ts); losing that subscription empties the cache.
 */
function tokenCacheFor(config: Config, releasers: Releasers, logger: Logger): { tokens: TokenCache; live: () => boolean } | null {
  if (config.refresh.cache.ttlMs <= 0) return null;
  const tokens = createTokenCache({
    ttlMs: config.refresh.cache.ttlMs,
    bufferMs: config.refresh.onDemandBufferMs,
    maxEntries: config.refresh.cache.maxUsers,
  });
  const subscription = subscribePairChanges({
    redis: subscriberRedis(config),
    prefix: config.queuePrefix,
    onChange: (userUlid) => tokens.delete(userUlid),
    onLiveChange: (live) => {
      tokens.clear();
      componentLogger(logger, "onDemand").debug({ live }, "token cache invalidation feed");
    },
  });
  releasers.add("pair-change subscription", () => subscription.close());
  return { tokens, live: () => subscription.live };
}

function ownPrisma(config: Config, poolSize: number, releasers: Releasers): PrismaClient {
  // Request paths use this pool: a database that does not answer must fail them within 2 s.
  const prisma = createPrisma(config.databaseUrl, { max: poolSize, connectTimeoutMs: REQUEST_PATH_CONNECT_TIMEOUT_MS });
  releasers.add("prisma", () => prisma.$disconnect());
  return prisma;
}
