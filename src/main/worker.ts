/**
 * Entry point of the `worker` dyno (Procfile). Parses config once, starts the worker app and handles
 * SIGTERM/SIGINT (Heroku may send several): stop taking jobs, let in-flight refreshes finish and
 * persist, exit 0 — or exit 1 at the hard deadline, before Heroku's SIGKILL at 30 s.
 */
import { exitOnStartFailure, loadConfigOrExit, processLogger } from "./boot.js";
import { startWorkerApp, type WorkerApp } from "../wiring/worker-app.js";

const SHUTDOWN_DEADLINE_MS = 24_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = processLogger(config, "worker");
  // Handlers first: a SIGTERM that arrives while the worker is still starting must not kill it mid-way
  // (the default action); it stops the worker as soon as it has started.
  let app: WorkerApp | null = null;
  let requested: string | null = null;
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    requested ??= signal;
    if (!app || shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, "shutting down");
    setTimeout(() => {
      logger.error("shutdown deadline reached with work still running");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("unhandledRejection", (err) => logger.error({ err }, "unhandled rejection"));
  logger.info("worker starting");
  app = await startWorkerApp(config, { logger });
  if (requested) shutdown(requested);
}

main().catch(exitOnStartFailure("worker"));
