// @ts-check
/**
 * Connecting a Platform managed user (existing Platform customers; Cal.com takes no new ones): the app
 * creates the user with its Platform client, stores the pair with saveCalTokens, and proves the grant
 * works with a refresh through the worker (requestCalTokenRefresh).
 */
import { requestCalTokenRefresh, saveCalTokens } from "cal-token-worker";
import { readText, sendJson } from "./http.js";

/** @param {{ calApiUrl: string, platform: { clientId: string, clientSecret: string } | null }} options */
export function managedUserRoutes(options) {
  /**
   * POST /cal/managed-users {userUlid, email}: a Platform managed user, stored and checked.
   * @param {import("node:http").IncomingMessage} req @param {import("node:http").ServerResponse} res
   */
  async function create(req, res) {
    if (!options.platform) return sendJson(res, 400, { error: "no Platform client configured" });
    const { userUlid, email } = JSON.parse(await readText(req));
    const { clientId, clientSecret } = options.platform;
    const created = await fetch(`${options.calApiUrl}/v2/oauth-clients/${encodeURIComponent(clientId)}/users`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cal-secret-key": clientSecret },
      body: JSON.stringify({ email, timeZone: "Europe/London" }),
    });
    if (!created.ok) return sendJson(res, 502, { error: "Cal.com refused the managed user", status: created.status });
    /** @type {{ data: { user: { id: number }, accessToken: string, refreshToken: string, accessTokenExpiresAt: number, refreshTokenExpiresAt: number } }} */
    const body = /** @type {any} */ (await created.json());
    const { data } = body;
    // The pair goes in here and nowhere else (not in logs, not in the session).
    await saveCalTokens({
      userUlid,
      kind: "managed",
      calUserId: data.user.id,
      accessToken: data.accessToken,
      refreshToken: data.refreshToken,
      accessTokenExpiresAt: data.accessTokenExpiresAt,
      refreshTokenExpiresAt: data.refreshTokenExpiresAt,
    });
    // Proves the grant works end to end: the worker refreshes it through the queue.
    const check = await requestCalTokenRefresh(userUlid, { wait: true, timeoutMs: 10_000 });
    if (!check.success) return sendJson(res, 502, { error: check.error?.code ?? "refresh.failed" });
    sendJson(res, 201, { connected: true, refreshed: check.refreshed });
  }

  return { create };
}
