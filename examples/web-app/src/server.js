// @ts-check
/** `npm start`: the example app on $PORT (default 3001). Stops cleanly on SIGTERM. */
import { closeCalTokenClient } from "cal-token-worker";
import { createApp, optionsFromEnv } from "./app.js";

const server = createApp({
  ...optionsFromEnv(),
  onEvent: (event) => console.log(`event ${event.type} for ${event.userUlid ?? "the fleet"}`),
});
server.listen(Number(process.env.PORT ?? 3001), () => console.log(`example app on ${JSON.stringify(server.address())}`));

const stop = () => {
  server.close();
  closeCalTokenClient().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
