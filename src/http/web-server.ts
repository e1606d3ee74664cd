import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { registerBullBoard, type BoardCredentials, type BoardQueues } from "./bull-board.js";
import { withTimeout } from "../core/timeout.js";

export type CheckStatus = "ok" | "fail";

export interface Readiness {
  ok: boolean;
  checks: Record<string, CheckStatus>;
}

export interface WebServerDeps {
  queues: BoardQueues;
  metrics: Metrics;
  logger: Logger;
  /** Basic-auth credentials for Bull Board (BULL_BOARD_USERNAME / BULL_BOARD_PASSWORD). */
  bullBoard: BoardCredentials | null;
  /**
   * Without credentials the board is not mounted at all (its URLs answer 404), because the board can
   * retry, promote and delete jobs. Only a local demo may set this to serve it without auth.
   */
  allowUnauthenticatedBoard?: boolean;
  /** Dependency checks for /readyz (the web composition root pings Postgres `SELECT 1` and Redis `PING`). */
  readiness: () => Promise<Readiness>;
  /** Where Bull Board is mounted. Default "/admin/queues". */
  basePath?: string;
}

export const DEFAULT_BOARD_PATH = "/admin/queues";

/** A hung dependency must turn into a 503 well before the router's or the orchestrator's probe timeout. */
const READINESS_TIMEOUT_MS = 5_000;

/** Probes and board polling (every few seconds per open tab) are logged at debug, everything else at info. */
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
  const log = deps.logger.child({ component: "http" });
  // The cast drops the pino Logger type parameter: FastifyInstance<…, pino.Logger> is not assignable to
  // the default FastifyInstance (pino's msgPrefix), and callers only need the base logger interface.
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;

  app.addHook("onResponse", async (request, reply) => {
    const path = request.url.split("?", 1)[0] ?? request.url;
    const quiet = QUIET_PATHS.has(path) || (path.startsWith(`${basePath}/`) && reply.statusCode < 400);
    const line = { method: request.method, path, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (quiet) request.log.debug(line, "request");
    else request.log.info(line, "request");
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    let result: Readiness;
    try {
      result = await withTimeout(deps.readiness(), READINESS_TIMEOUT_MS, "readiness check");
    } catch (err) {
      log.warn({ err }, "readiness check failed");
      result = { ok: false, checks: { readiness: "fail" } };
    }
    return reply.code(result.ok ? 200 : 503).send({ status: result.ok ? "ok" : "fail", checks: result.checks });
  });

  app.get("/metrics", async (_request, reply) => {
    const body = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(body);
  });

  if (deps.bullBoard || deps.allowUnauthenticatedBoard === true) {
    registerBullBoard(app, { queues: deps.queues, basePath, credentials: deps.bullBoard });
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
