/** Entry point of the `web` dyno (Procfile): Bull Board, health, readiness and metrics on $PORT. */
import { exitOnStartFailure, loadConfigOrExit, processLogger } from "./boot.js";
import { startWebApp, type WebApp } from "../wiring/web-app.js";

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = processLogger(config, "web");
  // Handlers first, so a SIGTERM during start-up stops the process cleanly once it has started.
  let app: WebApp | null = null;
  let requested = false;
  let closing = false;
  const shutdown = () => {
    requested = true;
    if (!app || closing) return;
    closing = true;
    setTimeout(() => process.exit(1), 10_000).unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  app = await startWebApp(config, { logger });
  logger.info({ url: app.url, board: config.bullBoard ? app.boardUrl : "disabled (set BULL_BOARD_USERNAME/PASSWORD)" }, "web started");
  if (requested) shutdown();
}

main().catch(exitOnStartFailure("web"));
