// @ts-check
/**
 * A Cal.com API call on a request path: a valid token first (one primary-key read while it is fresh),
 * then the call, then handleCalApiResponse, which refreshes once and replays once if Cal.com says the
 * token expired (498, or 401 "Invalid Access Token.").
 */
import { ensureValidCalToken, ERROR_CODES, handleCalApiResponse } from "cal-token-worker";
import { sendJson, sendUnavailable } from "./http.js";

/** @param {{ calApiUrl: string }} options */
export function calcomRoutes(options) {
  /** GET /api/cal/me?user=ULID: the user's Cal.com profile. */
  async function me(/** @type {URL} */ url, /** @type {import("node:http").ServerResponse} */ res) {
    const userUlid = url.searchParams.get("user") ?? "";
    const token = await ensureValidCalToken(userUlid);
    if (!token.success || !token.tokenInfo) {
      const error = token.error ?? { code: ERROR_CODES.internal, retryable: false };
      if (error.code === ERROR_CODES.reconnectRequired || error.code === ERROR_CODES.notFound) {
        return sendJson(res, 409, { error: error.code, reconnect: `/cal/connect?user=${encodeURIComponent(userUlid)}` });
      }
      if (error.retryable) return sendUnavailable(res, error);
      return sendJson(res, 500, { error: error.code });
    }
    const accessToken = token.tokenInfo.accessToken;
    /** @param {string} t */
    const call = (t) => fetch(`${options.calApiUrl}/v2/me`, { headers: { authorization: `Bearer ${t}` } });
    const answer = await handleCalApiResponse(await call(accessToken), call, userUlid, { accessToken });
    sendJson(res, answer.status, await answer.json());
  }

  return { me };
}
