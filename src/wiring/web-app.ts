/**
 * Composition root of the web process: Bull Board, /healthz, /readyz, /metrics. On Heroku only `web`
 * dynos get HTTP, so the board and metrics live here; everything they show is read from Redis.
 * Each resource registers its closer as it is created; `close()` runs them in reverse (the server,
 * then the queues, then the database client), each awaited, a failing one not stopping the rest.
 */
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config/config.js";
import { readFleetState } from "../fleet/fleet-state.js";
import { withTimeout } from "../core/timeout.js";
import { createWebServer, DEFAULT_BOARD_PATH, type Readiness } from "../http/web-server.js";
import type { Logger } from "../log/logger.js";
import { createMetrics } from "../metrics/metrics.js";
import { fleetRedis, queueConnection } from "../queue/connection.js";
import { QUEUES } from "../queue/names.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { readTokenStats } from "../store/token-stats.js";
import { checkClientsForStoredKinds } from "./client-check.js";
import { createReleasers } from "./releasers.js";

export interface WebApp {
  server: FastifyInstance;
  /** Base URL once listening, e.g. http://127.0.0.1:3000 */
  url: string;
  boardUrl: string;
  close(): Promise<void>;
}

/** Each readiness check gets this long, inside the server's own bound on the whole request. */
const CHECK_TIMEOUT_MS = 1_000;

export async function startWebApp(
  config: Config,
  opts: {
    logger: Logger;
    host?: string;
    port?: number;
    /** Local demo only: serve Bull Board and /metrics without credentials. */
    allowUnauthenticatedBoard?: boolean;
  },
): Promise<WebApp> {
  const releasers = createReleasers(opts.logger);
  const prisma = createPrisma(config.databaseUrl, { max: 2 });
  releasers.add("prisma", () => prisma.$disconnect());
  await checkClientsForStoredKinds(config, prisma, opts.logger, releasers);
  // Fail-fast commands on reconnect-forever connections: a request gets an error (503) while Redis is
  // away, and the board works again by itself once it is back. On a cluster, one shared Cluster that
  // is closed after the queues.
  const redisConnection = queueConnection(config, "web");
  releasers.add("redis connection", () => redisConnection.close());
  const connection = redisConnection.connection;
  const prefix = config.queuePrefix;
  const queues = {
    refresh: new Queue(QUEUES.refresh, { connection, prefix }),
    sweep: new Queue(QUEUES.sweep, { connection, prefix }),
    events: new Queue(QUEUES.events, { connection, prefix }),
  };
  releasers.add("queues", () => Promise.allSettled(Object.values(queues).map((q) => q.close())));
  // Without a listener, BullMQ prints every connection error of a Queue to console.error (raw, not JSON);
  // debug only: the failing requests (503s, readiness) already say that Redis is away.
  for (const q of Object.values(queues)) q.on("error", (err) => opts.logger.debug({ err, queue: q.name }, "queue connection error"));
  const redis = fleetRedis(config);
  releasers.add("fleet redis", () => redis.disconnect());
  const metrics = createMetrics({
    queues: Object.values(queues),
    tokenStats: () => readTokenStats(prisma, new Date(), { refreshTokenAtRiskMs: config.policy.refreshTokenAtRiskMs }),
    fleetState: () => readFleetState(redis, prefix, new Date()),
  });

  const server = createWebServer({
    queues,
    metrics,
    logger: opts.logger,
    bullBoard: config.bullBoard,
    metricsBearerToken: config.metricsBearerToken,
    allowUnauthenticatedBoard: opts.allowUnauthenticatedBoard ?? false,
    allowUnauthenticatedMetrics: opts.allowUnauthenticatedBoard ?? false,
    readiness: () => readiness(prisma, queues.refresh),
  });
  releasers.add("web server", () => server.close());
  const host = opts.host ?? "0.0.0.0";
  await server.listen({ host, port: opts.port ?? config.port });
  const address = server.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  return { server, url, boardUrl: `${url}${DEFAULT_BOARD_PATH}`, close: () => releasers.closeAll() };
}

async function readiness(prisma: PrismaClient, refreshQueue: Queue): Promise<Readiness> {
  const [db, redis] = await Promise.allSettled([
    withTimeout(prisma.$queryRaw`SELECT 1`, CHECK_TIMEOUT_MS, "postgres readiness"),
    // A bounded Redis round trip through the same client the board uses.
    withTimeout(refreshQueue.getJobCounts("active"), CHECK_TIMEOUT_MS, "redis readiness"),
  ]);
  const checks = { postgres: db.status === "fulfilled" ? "ok" : "fail", redis: redis.status === "fulfilled" ? "ok" : "fail" } as const;
  return { ok: checks.postgres === "ok" && checks.redis === "ok", checks };
}
