// @ts-check
/** Small node:http helpers for the example (a framework would give you these). */

/**
 * @param {import("node:http").ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
export function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

/**
 * The raw body as text: a webhook signature covers the exact bytes, so read them before parsing.
 * @param {import("node:http").IncomingMessage} req
 * @param {number} [limit]
 * @returns {Promise<string>}
 */
export async function readText(req, limit = 64 * 1024) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error("request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A retryable failure of the token module: answer 503 and say when to come back.
 * @param {import("node:http").ServerResponse} res
 * @param {{ code: string, retryAfterMs?: number | undefined }} error
 */
export function sendUnavailable(res, error) {
  const seconds = Math.max(1, Math.ceil((error.retryAfterMs ?? 1_000) / 1_000));
  sendJson(res, 503, { error: error.code, retryAfterSeconds: seconds }, { "retry-after": String(seconds) });
}
