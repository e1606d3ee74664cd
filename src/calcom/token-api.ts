/**
 * The Cal.com token client on a dedicated got instance. Endpoints: docs/calcom-api.md#managed-user-refresh,
 * docs/calcom-api.md#managed-user-force-refresh, docs/calcom-api.md#oauth2-token-endpoint and
 * docs/calcom-api.md#oauth2-authorization-code. Every HTTP outcome becomes a `CalRefreshResult` (see
 * classify.ts); only programmer errors throw, such as a call for a kind whose client is not configured
 * (the refresher and the connect helper check that first, docs/oauth2.md#configuration).
 */
import http from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
import got, { type Response } from "got";
import type { CalRefreshResult } from "../core/calcom-result.js";
import type { CalcomTokenApi } from "../core/ports.js";
import { componentLogger, type Logger } from "../log/logger.js";
import { classifyResponse, type ResponseHeaders, type TokenEndpoint } from "./classify.js";
import { classifyRequestError } from "./request-error.js";

export interface CalcomTokenApiDeps {
  baseUrl: string;
  /** Platform (managed users) OAuth client: both or neither. */
  clientId?: string;
  clientSecret?: string;
  /** Whole-request budget. The refresh lease must outlive it. */
  timeoutMs: number;
  logger: Logger;
  /**
   * OAuth 2.0 app (oauth2 users). Without `clientSecret` (or with null) it is a public client: no
   * client_secret is sent, and a code exchange must carry a PKCE verifier. Never the Platform client's
   * values: Cal.com knows them as different clients (docs/oauth2.md#why-no-fallback).
   */
  oauth2?: { clientId: string; clientSecret?: string | null };
  /** Wall clock in epoch ms: relative expiries count from the request's start, absolute ones are checked against it. */
  now?: () => number;
}

export interface HttpCalcomTokenApi extends CalcomTokenApi {
  /** Destroys the keep-alive sockets (graceful shutdown, tests). The client is unusable afterwards. */
  close(): void;
}

interface PlatformClient {
  clientId: string;
  clientSecret: string;
}
interface OAuth2App {
  clientId: string;
  clientSecret: string | null;
}

export function createCalcomTokenApi(deps: CalcomTokenApiDeps): HttpCalcomTokenApi {
  const base = checkedBaseUrl(deps.baseUrl);
  if (!Number.isFinite(deps.timeoutMs) || deps.timeoutMs <= 0) throw new TypeError("timeoutMs must be a positive number");
  const platform = platformClient(deps);
  const oauth2 = oauth2App(deps.oauth2);
  const now = deps.now ?? Date.now;
  const log = componentLogger(deps.logger, "tokenService");

  // Idle sockets are dropped after 4 s, before the usual 5 s server keep-alive timeout: reusing a
  // socket the server is closing yields ECONNRESET, which we would have to treat as "may have rotated".
  const agent = {
    http: new http.Agent({ keepAlive: true, timeout: 4_000 }),
    https: new https.Agent({ keepAlive: true, timeout: 4_000 }),
  };
  const client = got.extend({
    // Never retry: a refresh whose response was lost has probably rotated, and a blind retry then
    // either fails with the dead token or (worse, after a race) rotates twice.
    retry: { limit: 0 },
    timeout: { request: deps.timeoutMs },
    // Statuses and bodies are classified by us, so HTML pages and bad JSON become results, not throws.
    throwHttpErrors: false,
    responseType: "text",
    // A redirect on a token POST is a misconfiguration; following it could resend the secret elsewhere.
    followRedirect: false,
    agent,
    // No Origin header: Cal.com checks Origin against redirect URIs and servers must not send one
    // (docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token).
    headers: { accept: "application/json", "user-agent": "cal-token-worker" },
  });
  // x-cal-client-id moves these calls from the per-IP bucket (120/min) to the client bucket (500/min)
  // (docs/calcom-api.md#rate-limits).
  const platformHeaders = (p: PlatformClient) => ({ "x-cal-secret-key": p.clientSecret, "x-cal-client-id": p.clientId });
  // The OAuth2 endpoint authenticates by the body's client_id/client_secret and ignores the header; the
  // throttler reads it first, so token calls get their own client bucket instead of sharing our IP's.
  const oauth2Headers = (app: OAuth2App) => ({ "x-cal-client-id": app.clientId });
  // A public client has no secret: client_id alone (plus PKCE on a code exchange) identifies it.
  const oauth2Credentials = (app: OAuth2App) =>
    app.clientSecret === null ? { client_id: app.clientId } : { client_id: app.clientId, client_secret: app.clientSecret };
  const tokenUrl = `${base}/v2/auth/oauth2/token`;

  async function call(
    op: TokenEndpoint,
    url: string,
    opts: { headers?: Record<string, string>; json?: Record<string, unknown> },
    secrets: string[],
  ): Promise<CalRefreshResult> {
    const startedAt = performance.now();
    // Expiry is counted from before the request: errs on the early side by at most the round trip.
    const requestedAtMs = now();
    // Only the network call is guarded: a bug in classification must throw, not pose as a network error.
    let outcome: { res: Response<string> } | { failed: CalRefreshResult };
    try {
      outcome = { res: await client.post(url, opts) };
    } catch (err) {
      // The got error carries the request options (refresh token, secret): read, never pass on.
      outcome = { failed: classifyRequestError(err) };
    }
    const raw =
      "res" in outcome
        ? classifyResponse(op, outcome.res.statusCode, outcome.res.headers as ResponseHeaders, outcome.res.body, requestedAtMs)
        : outcome.failed;
    const status = "res" in outcome ? outcome.res.statusCode : "status" in raw ? raw.status : null;
    const result = scrub(raw, secrets);
    logResult(log, op, result, status, Math.round(performance.now() - startedAt));
    return result;
  }

  const secretsOf = (c: { clientSecret: string | null }, ...more: (string | undefined)[]): string[] =>
    [c.clientSecret, ...more].filter((v): v is string => typeof v === "string");

  return {
    // async, so a programmer error (bad argument) surfaces as a rejected promise, not a sync throw.
    async refreshManaged(refreshToken) {
      requireText(refreshToken, "refreshToken");
      const p = configured(platform, "the Platform client (CAL_CLIENT_ID, CAL_CLIENT_SECRET)");
      const url = `${base}/v2/oauth/${encodeURIComponent(p.clientId)}/refresh`;
      return call("managed.refresh", url, { headers: platformHeaders(p), json: { refreshToken } }, secretsOf(p, refreshToken));
    },
    async forceRefreshManaged(calUserId) {
      if (!Number.isSafeInteger(calUserId) || calUserId <= 0) throw new TypeError("calUserId must be a positive integer");
      const p = configured(platform, "the Platform client (CAL_CLIENT_ID, CAL_CLIENT_SECRET)");
      const url = `${base}/v2/oauth-clients/${encodeURIComponent(p.clientId)}/users/${calUserId}/force-refresh`;
      return call("managed.forceRefresh", url, { headers: platformHeaders(p) }, secretsOf(p));
    },
    async refreshOAuth2(refreshToken) {
      requireText(refreshToken, "refreshToken");
      const app = configured(oauth2, "the OAuth 2.0 app (CAL_OAUTH_CLIENT_ID)");
      const json = { grant_type: "refresh_token", ...oauth2Credentials(app), refresh_token: refreshToken };
      return call("oauth2.token", tokenUrl, { headers: oauth2Headers(app), json }, secretsOf(app, refreshToken));
    },
    async exchangeAuthorizationCode({ code, redirectUri, codeVerifier }) {
      requireText(code, "code");
      requireText(redirectUri, "redirectUri");
      if (codeVerifier !== undefined) requireText(codeVerifier, "codeVerifier");
      const app = configured(oauth2, "the OAuth 2.0 app (CAL_OAUTH_CLIENT_ID)");
      if (app.clientSecret === null && codeVerifier === undefined)
        throw new TypeError("a public client's code exchange needs codeVerifier (PKCE)");
      const json = {
        grant_type: "authorization_code",
        ...oauth2Credentials(app),
        code,
        redirect_uri: redirectUri,
        ...(codeVerifier === undefined ? {} : { code_verifier: codeVerifier }),
      };
      return call("oauth2.code", tokenUrl, { headers: oauth2Headers(app), json }, secretsOf(app, code, codeVerifier));
    },
    close() {
      agent.http.destroy();
      agent.https.destroy();
    },
  };
}

function logResult(log: Logger, op: TokenEndpoint, r: CalRefreshResult, status: number | null, durationMs: number): void {
  const fields: Record<string, unknown> = { op, kind: r.kind, status, durationMs };
  if (r.kind === "transient") fields.reason = r.reason;
  if (r.kind === "transient" || r.kind === "malformed") fields.mayHaveRotated = r.mayHaveRotated;
  if (r.kind === "rejected") fields.code = r.code;
  if (r.kind === "refreshed" && r.expiry) {
    fields.expirySource = r.expiry.source;
    if (r.expiry.source === "assumed") fields.expiryAssumed = r.expiry.assumed;
  }
  if (r.kind === "refreshed") log.info(fields, `${op} ok`);
  else if (r.kind === "config_error") log.error(fields, `${op} failed: not a token answer (configuration): ${r.message}`);
  else log.warn(fields, `${op} ${r.kind}`);
}

/**
 * Belt and braces: Cal.com's messages do not echo request data, but a proxy's error page might.
 * Whatever we sent that is secret is cut out of every non-refreshed result.
 */
function scrub(r: CalRefreshResult, secrets: string[]): CalRefreshResult {
  if (r.kind === "refreshed" || r.kind === "rate_limited") return r;
  const clean = (s: string): string => secrets.reduce((acc, sec) => (sec.length >= 4 ? acc.split(sec).join("[REDACTED]") : acc), s);
  if (r.kind === "rejected") return { ...r, code: clean(r.code), message: clean(r.message) };
  return { ...r, message: clean(r.message) };
}

function checkedBaseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError("baseUrl must be an absolute URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError("baseUrl must be http(s)");
  // got would turn user:pass@ into an Authorization header, which token calls must never carry.
  if (u.username !== "" || u.password !== "") throw new TypeError("baseUrl must not contain credentials");
  if (u.search !== "" || u.hash !== "") throw new TypeError("baseUrl must not have a query or fragment");
  return raw.replace(/\/+$/, "");
}

function platformClient(deps: CalcomTokenApiDeps): PlatformClient | null {
  if (deps.clientId === undefined && deps.clientSecret === undefined) return null;
  requireText(deps.clientId, "clientId");
  requireText(deps.clientSecret, "clientSecret");
  return { clientId: deps.clientId, clientSecret: deps.clientSecret };
}

function oauth2App(app: CalcomTokenApiDeps["oauth2"]): OAuth2App | null {
  if (app === undefined) return null;
  requireText(app.clientId, "oauth2.clientId");
  const secret = app.clientSecret ?? null;
  if (secret !== null) requireText(secret, "oauth2.clientSecret");
  return { clientId: app.clientId, clientSecret: secret };
}

/** The client for a call; a call without one is a bug of the caller, which checks the configuration first. */
function configured<T>(client: T | null, what: string): T {
  if (client === null) throw new Error(`${what} is not configured; this call should not have been made`);
  return client;
}

function requireText(v: unknown, name: string): asserts v is string {
  if (typeof v !== "string" || v.length === 0) throw new TypeError(`${name} must be a non-empty string`);
}
