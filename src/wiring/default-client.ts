/**
 * The module-level functions the web app calls (`ensureValidCalToken(userUlid)` etc.). They share
 * one client built lazily from the environment on first use, so the existing call style works
 * unchanged. `closeCalTokenClient()` releases it (call it on shutdown).
 */
import { createCalTokenClient, type CalTokenClient } from "./cal-token-client.js";
import type {
  CompleteCalConnectionInput,
  HandleApiResponseOptions,
  RequestRefreshOptions,
  SaveOptions,
} from "../ondemand/on-demand-service.js";
import type { CalTokenStatusReport, SaveCalTokensInput, TokenRefreshResult } from "../ondemand/types.js";

let defaultClient: CalTokenClient | null = null;

function client(): CalTokenClient {
  defaultClient ??= createCalTokenClient();
  return defaultClient;
}

export function ensureValidCalToken(userUlid: string, forceRefresh = false): Promise<TokenRefreshResult> {
  return client().ensureValidCalToken(userUlid, forceRefresh);
}

export function handleCalApiResponse(
  response: Response,
  retryFn: (accessToken: string) => Promise<Response>,
  userUlid: string,
  options?: HandleApiResponseOptions,
): Promise<Response> {
  return client().handleCalApiResponse(response, retryFn, userUlid, options);
}

export function saveCalTokens(input: SaveCalTokensInput, opts?: SaveOptions): Promise<void> {
  return client().saveCalTokens(input, opts);
}

export function getCalTokenStatus(userUlid: string): Promise<CalTokenStatusReport | null> {
  return client().getCalTokenStatus(userUlid);
}

export function requestCalTokenRefresh(userUlid: string, opts?: RequestRefreshOptions): Promise<TokenRefreshResult> {
  return client().requestCalTokenRefresh(userUlid, opts);
}

/**
 * The OAuth 2.0 callback in one call: exchanges the authorization code (with the PKCE verifier where
 * used), stores and schedules the pair, returns the user's status (docs/oauth2.md#the-callback).
 */
export function completeCalConnection(input: CompleteCalConnectionInput): Promise<CalTokenStatusReport> {
  return client().completeCalConnection(input);
}

export async function closeCalTokenClient(): Promise<void> {
  const c = defaultClient;
  defaultClient = null;
  if (c) await c.close();
}
