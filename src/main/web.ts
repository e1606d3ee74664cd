/** Entry point of the `web` dyno (Procfile): Bull Board, health, readiness and metrics on $PORT. */
import { loadConfigOrExit, processLogger } from "./boot.js";
import { startWebApp } from "../wiring/web-app.js";

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = processLogger(config, "web");
  const app = await startWebApp(config, { logger });
  logger.info({ url: app.url, board: config.bullBoard ? app.boardUrl : "disabled (set BULL_BOARD_USERNAME/PASSWORD)" }, "web started");
  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(1), 10_000).unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

void main();
