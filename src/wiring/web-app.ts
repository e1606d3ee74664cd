/**
 * Composition root of the web process: Bull Board, /healthz, /readyz, /metrics. On Heroku only `web`
 * dynos get HTTP, so the board and metrics live here; everything they show is read from Redis.
 * Each resource registers its closer as it is created; `close()` runs them in reverse (the server,
 * then the queues, then the database client), each awaited, a failing one not stopping the rest.
 */
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config/config.js";
import { withTimeout } from "../core/timeout.js";
import { createWebServer, DEFAULT_BOARD_PATH, type Readiness } from "../http/web-server.js";
import type { Logger } from "../log/logger.js";
import { createMetrics } from "../metrics/metrics.js";
import { workerConnection } from "../queue/connection.js";
import { QUEUES } from "../queue/names.js";
import { createPrisma, type PrismaClient } from "../store/prisma.js";
import { readTokenStats } from "../store/token-stats.js";
import { createReleasers } from "./releasers.js";

export interface WebApp {
  server: FastifyInstance;
  /** Base URL once listening, e.g. http://127.0.0.1:3000 */
  url: string;
  boardUrl: string;
  close(): Promise<void>;
}

export async function startWebApp(
  config: Config,
  opts: { logger: Logger; host?: string; port?: number; allowUnauthenticatedBoard?: boolean },
): Promise<WebApp> {
  const releasers = createReleasers(opts.logger);
  const prisma = createPrisma(config.databaseUrl, { max: 2 });
  releasers.add("prisma", () => prisma.$disconnect());
  // Retry-forever connections: the board and probes are long-lived and must recover after an outage.
  const connection = workerConnection(config.redisUrl);
  const prefix = config.queuePrefix;
  const queues = {
    refresh: new Queue(QUEUES.refresh, { connection, prefix }),
    sweep: new Queue(QUEUES.sweep, { connection, prefix }),
    events: new Queue(QUEUES.events, { connection, prefix }),
  };
  releasers.add("queues", () => Promise.allSettled(Object.values(queues).map((q) => q.close())));
  const metrics = createMetrics({ queues: Object.values(queues), tokenStats: () => readTokenStats(prisma, new Date()) });

  const server = createWebServer({
    queues,
    metrics,
    logger: opts.logger,
    bullBoard: config.bullBoard,
    allowUnauthenticatedBoard: opts.allowUnauthenticatedBoard ?? false,
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
    prisma.$queryRaw`SELECT 1`,
    // A bounded Redis round trip through the same client the board uses.
    withTimeout(refreshQueue.getJobCounts("active"), 2_000, "redis readiness"),
  ]);
  const checks = { postgres: db.status === "fulfilled" ? "ok" : "fail", redis: redis.status === "fulfilled" ? "ok" : "fail" } as const;
  return { ok: checks.postgres === "ok" && checks.redis === "ok", checks };
}
