import Fastify, { LogController, type FastifyInstance } from "fastify";
import { withTimeout } from "../core/timeout.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { registerBullBoard, type BoardQueues } from "./bull-board.js";
import type { BoardCredentials } from "./credentials.js";
import { registerMetricsRoute } from "./metrics-route.js";

export type CheckStatus = "ok" | "fail";

export interface Readiness {
  ok: boolean;
  checks: Record<string, CheckStatus>;
}

export interface WebServerDeps {
  queues: BoardQueues;
  metrics: Metrics;
  logger: Logger;
  /** Basic-auth credentials for Bull Board (BULL_BOARD_USERNAME / BULL_BOARD_PASSWORD); they also open /metrics. */
  bullBoard: BoardCredentials | null;
  /** METRICS_BEARER_TOKEN: `Authorization: Bearer <token>` opens /metrics. */
  metricsBearerToken?: string | null;
  /**
   * Without credentials the board is not mounted at all (its URLs answer 404), because the board can
   * retry and promote jobs. Only a local demo may set this to serve it without auth.
   */
  allowUnauthenticatedBoard?: boolean;
  /** The same for /metrics (404 without any credential configured). Local demo only. */
  allowUnauthenticatedMetrics?: boolean;
  /** Dependency checks for /readyz (the web composition root pings Postgres `SELECT 1` and Redis). */
  readiness: () => Promise<Readiness>;
  /** Where Bull Board is mounted. Default "/admin/queues". */
  basePath?: string;
  /** Bound on each request's Redis/Postgres work (readiness, a scrape, a board API call). Default 1.5 s. */
  dependencyTimeoutMs?: number;
}

export const DEFAULT_BOARD_PATH = "/admin/queues";

/**
 * A hung dependency must turn into a 503 well before a router's or an orchestrator's probe timeout:
 * each route bounds its own Redis/Postgres work by this much and answers 503 when it runs out.
 */
export const DEPENDENCY_TIMEOUT_MS = 1_500;

/**
 * Fastify's per-request timer (handlerTimeout) as the backstop for every route: a request that has
 * not been answered by then gets 503. The board's static assets are files streamed to possibly slow
 * browsers, so they get longer.
 */
const REQUEST_TIMEOUT_MS = 1_900;
const STATIC_ASSET_TIMEOUT_MS = 60_000;

/** Probes and board polling (every few seconds per open tab) are logged at debug when they succeed. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * The web process's HTTP server: liveness, readiness, Prometheus metrics and Bull Board. Returns the
 * instance unstarted (call `listen`); the caller owns `close()`. Under jest, use real HTTP: `inject()`
 * loads light-my-request, which requires the ESM-only `cookie` package that jest cannot require on Node 20.
 *
 * Request logging is ours, not Fastify's: one line per response with method, path (no query string),
 * status and duration. Headers are never logged, so the Authorization header cannot leak.
 */
export function createWebServer(deps: WebServerDeps): FastifyInstance {
  const basePath = normaliseBasePath(deps.basePath ?? DEFAULT_BOARD_PATH);
  const timeoutMs = deps.dependencyTimeoutMs ?? DEPENDENCY_TIMEOUT_MS;
  const log = deps.logger.child({ component: "http" });
  // The cast drops the pino Logger type parameter: FastifyInstance<…, pino.Logger> is not assignable to
  // the default FastifyInstance (pino's msgPrefix), and callers only need the base logger interface.
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    handlerTimeout: Math.max(REQUEST_TIMEOUT_MS, timeoutMs + 400),
  }) as unknown as FastifyInstance;

  app.addHook("onRoute", (route) => {
    if (route.url?.startsWith(`${basePath}/static/`)) route.handlerTimeout = STATIC_ASSET_TIMEOUT_MS;
  });

  app.addHook("onResponse", async (request, reply) => {
    const path = request.url.split("?", 1)[0] ?? request.url;
    const quiet = reply.statusCode < 400 && (QUIET_PATHS.has(path) || path.startsWith(`${basePath}/`));
    const line = { method: request.method, path, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (quiet) request.log.debug(line, "request");
    else request.log.info(line, "request");
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    let result: Readiness;
    try {
      result = await withTimeout(deps.readiness(), timeoutMs, "readiness check");
    } catch (err) {
      log.warn({ err }, "readiness check failed");
      result = { ok: false, checks: { readiness: "fail" } };
    }
    return reply.code(result.ok ? 200 : 503).send({ status: result.ok ? "ok" : "fail", checks: result.checks });
  });

  registerMetricsRoute(app, {
    metrics: deps.metrics,
    credentials: { basic: deps.bullBoard, bearerToken: deps.metricsBearerToken ?? null },
    allowUnauthenticated: deps.allowUnauthenticatedMetrics === true,
    logger: log,
    timeoutMs,
  });

  if (deps.bullBoard || deps.allowUnauthenticatedBoard === true) {
    registerBullBoard(app, { queues: deps.queues, basePath, credentials: deps.bullBoard, logger: log, timeoutMs });
    if (!deps.bullBoard) log.warn({ basePath }, "Bull Board is served WITHOUT authentication (allowUnauthenticatedBoard)");
  } else {
    log.info({ basePath }, "Bull Board disabled: set BULL_BOARD_USERNAME and BULL_BOARD_PASSWORD to enable it");
  }

  return app;
}

/** "/admin/queues/" and "admin/queues" both become "/admin/queues". */
function normaliseBasePath(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "") throw new Error("basePath must not be the root: the board needs its own prefix");
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}
