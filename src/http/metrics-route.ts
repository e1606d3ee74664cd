import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { withTimeout } from "../core/timeout.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { metricsAuthorized, metricsChallenges, type MetricsCredentials } from "./credentials.js";

const REALM = "cal-token-worker metrics";

/**
 * GET /metrics behind credentials: `Authorization: Bearer <METRICS_BEARER_TOKEN>`, or HTTP basic with
 * the Bull Board pair. With neither configured the route does not exist (404), so a public web port
 * never hands out queue sizes and user counts by default. A scrape whose Redis or Postgres reads fail
 * or do not finish within `timeoutMs` answers 503 (a failed scrape, `up == 0`), never a hung request.
 */
export function registerMetricsRoute(
  app: FastifyInstance,
  opts: { metrics: Metrics; credentials: MetricsCredentials; allowUnauthenticated: boolean; logger: Logger; timeoutMs: number },
): void {
  const { credentials, logger } = opts;
  const configured = credentials.basic !== null || credentials.bearerToken !== null;
  if (!configured && !opts.allowUnauthenticated) {
    logger.info("/metrics disabled (404): set METRICS_BEARER_TOKEN, or BULL_BOARD_USERNAME and BULL_BOARD_PASSWORD, to enable it");
    return;
  }
  if (!configured) logger.warn("/metrics is served WITHOUT authentication (allowUnauthenticated, local demo only)");

  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!configured || metricsAuthorized(request.headers.authorization, credentials)) return;
    await reply.code(401).header("www-authenticate", metricsChallenges(credentials, REALM)).send({ error: "Unauthorized" });
  };

  app.get("/metrics", { onRequest: authenticate }, async (_request, reply) => {
    let body: string;
    try {
      body = await withTimeout(opts.metrics.render(), opts.timeoutMs, "metrics scrape");
    } catch (err) {
      logger.warn({ err }, "metrics scrape failed: Redis or Postgres did not answer");
      return reply.code(503).type("text/plain; charset=utf-8").send("metrics unavailable: Redis or Postgres did not answer\n");
    }
    return reply.type(opts.metrics.contentType).send(body);
  });
}
