// @ts-check
/**
 * Connecting a user's Cal.com account with an OAuth 2.0 app (the kind new integrations get):
 * /cal/connect sends the browser to Cal.com with a PKCE challenge; Cal.com redirects to /cal/callback,
 * where completeCalConnection exchanges the code, stores the pair and schedules its refreshes.
 */
import { createHash, randomBytes } from "node:crypto";
import { AppError, completeCalConnection, ERROR_CODES } from "cal-token-worker";
import { sendJson, sendUnavailable } from "./http.js";

const PENDING_TTL_MS = 10 * 60_000; // Cal.com's authorization codes live ten minutes.

/**
 * @typedef {{ userUlid: string, codeVerifier: string, at: number }} Pending
 * @typedef {import("node:http").ServerResponse} Res
 */

/** @param {{ authorizeUrl: string, publicUrl: () => string, oauthClientId: string | undefined }} options */
export function connectRoutes(options) {
  // In a real app this lives in the user's (signed, server-side) session, not in process memory.
  /** @type {Map<string, Pending>} */
  const pending = new Map();
  const redirectUri = () => `${options.publicUrl()}/cal/callback`;

  /** GET /cal/connect?user=ULID: PKCE verifier and state into the session, the browser to Cal.com. */
  function start(/** @type {URL} */ url, /** @type {Res} */ res) {
    const userUlid = url.searchParams.get("user");
    if (!userUlid || !options.oauthClientId) return sendJson(res, 400, { error: "user and an OAuth 2.0 app are required" });
    const state = randomBytes(16).toString("hex");
    const codeVerifier = randomBytes(32).toString("base64url");
    pending.set(state, { userUlid, codeVerifier, at: Date.now() });
    const to = new URL(options.authorizeUrl);
    to.search = new URLSearchParams({
      client_id: options.oauthClientId,
      redirect_uri: redirectUri(),
      state,
      code_challenge: createHash("sha256").update(codeVerifier).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();
    res.writeHead(302, { location: to.toString() }).end();
  }

  /** GET /cal/callback?code=…&state=…: the three lines the callback needs, plus error answers. */
  async function callback(/** @type {URL} */ url, /** @type {Res} */ res) {
    const state = url.searchParams.get("state") ?? "";
    const session = pending.get(state);
    pending.delete(state);
    const code = url.searchParams.get("code");
    if (!session || !code || Date.now() - session.at > PENDING_TTL_MS) return sendJson(res, 400, { error: "unknown or expired state" });
    try {
      const report = await completeCalConnection({
        userUlid: session.userUlid,
        code,
        redirectUri: redirectUri(),
        codeVerifier: session.codeVerifier,
      });
      sendJson(res, 200, { connected: true, status: report.status, accessTokenExpiresAt: report.accessTokenExpiresAt });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.retryable) return sendUnavailable(res, { code: err.code });
      // connect.code_rejected (expired, used, wrong redirect URI or verifier): start again.
      sendJson(res, err.code === ERROR_CODES.codeRejected ? 400 : 500, { error: err.code });
    }
  }

  return { start, callback };
}
