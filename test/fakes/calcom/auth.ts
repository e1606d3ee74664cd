/**
 * ApiAuthStrategy as seen from outside: client-secret auth for the platform routes (the 401 rows of
 * docs/calcom-api.md#managed-user-refresh), bearer auth for resource routes
 * (docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token). Messages are copied verbatim; clients key off them.
 */
import type { IncomingHttpHeaders } from "node:http";
import { header } from "./http-io.js";
import type { User } from "./rows.js";
import type { CalcomState } from "./state.js";

export interface AuthFailure {
  status: number;
  code: string;
  message: string;
}

const ONLY_CLIENT_ID =
  "ApiAuthStrategy - Only 'x-cal-client-id' header provided. Please also provide 'x-cal-secret-key' header or Auth bearer token as 'Authentication' header";
const NO_AUTH =
  "ApiAuthStrategy - No authentication method provided. Either pass an API key as 'Bearer' header or OAuth client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers";

const unauthorized = (message: string): AuthFailure => ({ status: 401, code: "UnauthorizedException", message });

/** Platform routes carry the client id in the path; the secret must come in x-cal-secret-key. */
export function authenticateClient(state: CalcomState, clientId: string, headers: IncomingHttpHeaders): AuthFailure | null {
  const secret = header(headers, "x-cal-secret-key");
  if (!secret) return unauthorized(ONLY_CLIENT_ID);
  const expected = state.clientSecret("managed", clientId);
  if (expected === undefined) return unauthorized(`ApiAuthStrategy - oAuth client - Client with ID ${clientId} not found`);
  if (expected !== secret) return unauthorized("ApiAuthStrategy - oAuth client - Invalid client secret");
  return null;
}

/**
 * Bearer check order: no row → 401 `Invalid Access Token.`; expired row → 498. A token cached as valid whose
 * row was deleted (force-refresh) fails the client lookup instead.
 */
export function authenticateBearer(state: CalcomState, headers: IncomingHttpHeaders): { user: User } | AuthFailure {
  const authorization = header(headers, "authorization");
  if (authorization) {
    const token = authorization.replace("Bearer ", "");
    if (token.startsWith("cal_")) return unauthorized("ApiAuthStrategy - api key - Your api key is not valid");
    const check = state.checkBearer(token);
    switch (check.status) {
      case "ok":
        return { user: check.user };
      case "expired":
        return { status: 498, code: "TokenExpiredException", message: "ACCESS_TOKEN_IS_EXPIRED" };
      case "clientGone":
        return unauthorized("ApiAuthStrategy - access token - OAuth client not found given the access token");
      case "unknown":
        return unauthorized("Invalid Access Token.");
    }
  }
  if (header(headers, "x-cal-client-id") && !header(headers, "x-cal-secret-key")) return unauthorized(ONLY_CLIENT_ID);
  return unauthorized(NO_AUTH);
}
