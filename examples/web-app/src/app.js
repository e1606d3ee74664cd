// @ts-check
/**
 * A web app's integration of cal-token-worker with nothing but node:http. The same calls fit a
 * Next.js route handler (Node runtime) or an Express/Fastify route: see docs/integration.md in the package's repository.
 */
import { createServer } from "node:http";
import { calcomRoutes } from "./calcom.js";
import { connectRoutes } from "./connect.js";
import { sendJson } from "./http.js";
import { managedUserRoutes } from "./managed-user.js";
import { webhookRoutes } from "./webhook.js";

/**
 * @typedef {object} AppOptions
 * @property {string} calApiUrl Cal.com API origin (CAL_API_URL)
 * @property {string} authorizeUrl Cal.com's OAuth 2.0 authorization page
 * @property {string | undefined} oauthClientId the OAuth 2.0 app's client id (CAL_OAUTH_CLIENT_ID)
 * @property {{ clientId: string, clientSecret: string } | null} platform the Platform client, for managed users
 * @property {string} webhookSecret EVENTS_WEBHOOK_SECRET, shared with the worker
 * @property {string} [publicUrl] this app's public origin (for redirect URIs); default: where it listens
 * @property {(event: import("cal-token-worker").TokenEvent) => void | Promise<void>} [onEvent]
 */

/** Reads the example's settings from the environment (the package reads its own). */
export function optionsFromEnv(env = process.env) {
  return {
    calApiUrl: env.CAL_API_URL ?? "https://api.cal.com",
    authorizeUrl: env.CAL_AUTHORIZE_URL ?? "https://app.cal.com/auth/oauth2/authorize",
    oauthClientId: env.CAL_OAUTH_CLIENT_ID,
    platform: env.CAL_CLIENT_ID && env.CAL_CLIENT_SECRET ? { clientId: env.CAL_CLIENT_ID, clientSecret: env.CAL_CLIENT_SECRET } : null,
    webhookSecret: env.EVENTS_WEBHOOK_SECRET ?? "",
    ...(env.PUBLIC_URL ? { publicUrl: env.PUBLIC_URL } : {}),
  };
}

/** @param {AppOptions} options */
export function createApp(options) {
  const server = createServer();
  const publicUrl = () => options.publicUrl ?? listeningUrl(server);
  const connect = connectRoutes({ ...options, publicUrl });
  const managed = managedUserRoutes(options);
  const calcom = calcomRoutes(options);
  const webhook = webhookRoutes({ secret: options.webhookSecret, onEvent: options.onEvent ?? (() => undefined) });

  server.on("request", (req, res) => {
    const url = new URL(req.url ?? "/", "http://app.invalid");
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      if (route === "GET /cal/connect") return connect.start(url, res);
      if (route === "GET /cal/callback") return connect.callback(url, res);
      if (route === "POST /cal/managed-users") return managed.create(req, res);
      if (route === "GET /api/cal/me") return calcom.me(url, res);
      if (route === "POST /webhooks/cal-token-worker") return webhook.receive(req, res);
      sendJson(res, 404, { error: "not found" });
    };
    handle().catch((/** @type {unknown} */ err) => {
      // Never log a request body or a token: the error's name and message are enough here.
      console.error(`${route} failed: ${err instanceof Error ? `${err.name}: ${err.message}` : "unknown error"}`);
      if (!res.headersSent) sendJson(res, 500, { error: "internal" });
    });
  });
  return server;
}

/** @param {import("node:http").Server} server */
function listeningUrl(server) {
  const address = server.address();
  return typeof address === "object" && address ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1";
}
