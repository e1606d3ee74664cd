// @ts-check
/**
 * The worker's webhooks (token.refresh_failing, token.reconnect_required, token.recovered and the
 * fleet-wide token.config_error / token.config_resolved). Verify the signature over the raw body before
 * trusting anything in it; deliveries are at least once, so deduplicate by event id.
 */
import { verifySignature } from "cal-token-worker";
import { readText, sendJson } from "./http.js";

/**
 * @param {{ secret: string, onEvent: (event: import("cal-token-worker").TokenEvent) => void | Promise<void> }} options
 */
export function webhookRoutes(options) {
  /** @type {Set<string>} */
  const seen = new Set();

  /** POST /webhooks/cal-token-worker */
  async function receive(/** @type {import("node:http").IncomingMessage} */ req, /** @type {import("node:http").ServerResponse} */ res) {
    const body = await readText(req);
    const signature = req.headers["x-cal-token-signature"];
    const nowSec = Math.floor(Date.now() / 1000);
    if (!verifySignature(options.secret, typeof signature === "string" ? signature : undefined, body, nowSec)) {
      return sendJson(res, 401, { error: "bad signature" });
    }
    /** @type {import("cal-token-worker").TokenEvent} */
    const event = JSON.parse(body);
    if (!seen.has(event.id)) {
      seen.add(event.id);
      // e.g. token.reconnect_required: mark the account, e-mail the user a reconnect link.
      await options.onEvent(event);
    }
    res.writeHead(204).end();
  }

  return { receive };
}
