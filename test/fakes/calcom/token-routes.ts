/**
 * The three token endpoints (managed refresh, force-refresh, OAuth 2.0 token) and their faults.
 * Each handler splits into a request-start lookup and a commit that runs after `latencyMs`, so two
 * concurrent refreshes with the same token really race (the loser gets Prisma's 404, docs/calcom-api.md#races).
 */
import { authenticateClient } from "./auth.js";
import { isBeforeCommit } from "./faults.js";
import type { FaultController } from "./faults.js";
import type { Body, Ctx } from "./http-io.js";
import { nestError, oauthError, sendJson, sendText } from "./http-io.js";
import { rateHeaders } from "./rate-limiter.js";
import type { CalcomState } from "./state.js";
import { isBodyFault, managedSuccess, oauth2Success, type Success } from "./token-bodies.js";
import type { Fault, StormStatus } from "./types.js";

export interface TokenDeps {
  state: CalcomState;
  faults: FaultController;
  /** Tracked timer, cleared by close(). */
  sleep: (ms: number) => Promise<void>;
  blockMs: number;
}

type Reply = (ctx: Ctx) => void;
type Committed = { error: Reply } | { success: Success };
type Prepared = { reply: Reply } | { commit: () => Committed };

export const TOO_MANY_REQUESTS = "CustomThrottlerGuard - Too many requests. Please try again later.";
const gatewayPage = (status: string): string =>
  `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`;
const HTML_502 = gatewayPage("502 Bad Gateway");
const HTML_504 = gatewayPage("504 Gateway Time-out");
// Truncated on purpose and token-free, so a client that logs the raw body leaks nothing.
const MALFORMED_JSON = '{"status":"success","data":{"accessToken';

async function runTokenEndpoint(ctx: Ctx, deps: TokenDeps, prepare: () => Prepared): Promise<void> {
  const planned = deps.faults.take();
  const fault = planned && "fault" in planned ? planned.fault : null;
  const storm = planned && "storm" in planned ? planned.storm : null;
  const prepared = prepare();
  await deps.sleep(deps.faults.latencyMs);
  if (storm && !storm.afterCommit) return answerStorm(ctx, storm.status);
  if (fault && isBeforeCommit(fault)) return answerFault(ctx, deps, fault);
  if ("reply" in prepared) return prepared.reply(ctx);
  const done = prepared.commit();
  if ("error" in done) return done.error(ctx);
  if (storm) return answerStorm(ctx, 504); // committed, then the proxy gave up waiting
  return answerSuccess(ctx, done.success, fault);
}

function answerSuccess(ctx: Ctx, success: Success, fault: Fault | null): void {
  if (isBodyFault(fault)) return sendJson(ctx, 200, success.reshape(fault), success.headers);
  switch (fault) {
    case "malformedJson":
      return sendText(ctx, 200, "application/json; charset=utf-8", MALFORMED_JSON, success.headers);
    case "dropAfterCommit":
      ctx.req.socket.destroy();
      return;
    case "hangAfterCommit":
      return; // the socket stays open until the client gives up or close() destroys it
    default:
      return sendJson(ctx, success.status, success.body, success.headers);
  }
}

/** Nest answers 500/503 with its envelope; 502/504 come from the edge proxy: HTML, no envelope, no rate headers. */
function answerStorm(ctx: Ctx, status: StormStatus): void {
  if (status === 500) return nestError(ctx, 500, "InternalServerErrorException", "Internal server error");
  if (status === 503) return nestError(ctx, 503, "ServiceUnavailableException", "Service Unavailable");
  ctx.extraHeaders = {};
  return sendText(ctx, status, "text/html", status === 502 ? HTML_502 : HTML_504);
}

function answerFault(ctx: Ctx, deps: TokenDeps, fault: Fault): void {
  switch (fault) {
    case "status500":
      return answerStorm(ctx, 500);
    case "status503":
      return answerStorm(ctx, 503);
    case "html502":
      return answerStorm(ctx, 502);
    case "rateLimit":
      ctx.extraHeaders = rateHeaders(ctx.rateLimit, 0, Math.ceil(deps.blockMs / 1000));
      return nestError(ctx, 429, "ThrottlerException", TOO_MANY_REQUESTS);
    default:
      return; // "hang": never answer
  }
}

const nestReply =
  (status: number, code: string, message: string): Reply =>
  (ctx) =>
    nestError(ctx, status, code, message);
const oauthReply =
  (status: number, error: string, description: string): Reply =>
  (ctx) =>
    oauthError(ctx, status, error, description);

const INVALID_BODY = nestReply(400, "BadRequestException", "Bad Request Exception");

/** POST /v2/oauth/:clientId/refresh — strict rotation, old AT untouched (docs/calcom-api.md#managed-user-refresh). */
export function managedRefresh(ctx: Ctx, deps: TokenDeps, clientId: string, body: Body): Promise<void> {
  return runTokenEndpoint(ctx, deps, () => {
    if (body === "invalid") return { reply: INVALID_BODY };
    const auth = authenticateClient(deps.state, clientId, ctx.req.headers);
    if (auth) return { reply: nestReply(auth.status, auth.code, auth.message) };
    const refreshToken = body?.refreshToken;
    if (typeof refreshToken !== "string") return { reply: INVALID_BODY };
    if (deps.state.lookupManagedRefresh(clientId, refreshToken) !== "ok") {
      return { reply: nestReply(400, "BadRequestException", "Invalid refresh token") };
    }
    return {
      commit: () => {
        const pair = deps.state.commitManagedRefresh(clientId, refreshToken);
        if (!pair) return { error: nestReply(404, "NOT_FOUND", "Invalid Query: The requested record was not found.") };
        return { success: managedSuccess(pair, deps.state.now()) };
      },
    };
  });
}

/**
 * POST /v2/oauth-clients/:clientId/users/:userId/force-refresh — kills every token of the user
 * (docs/calcom-api.md#managed-user-force-refresh).
 */
export function forceRefresh(ctx: Ctx, deps: TokenDeps, clientId: string, userIdParam: string): Promise<void> {
  return runTokenEndpoint(ctx, deps, () => {
    const auth = authenticateClient(deps.state, clientId, ctx.req.headers);
    if (auth) return { reply: nestReply(auth.status, auth.code, auth.message) };
    if (!/^-?\d+$/.test(userIdParam)) {
      return { reply: nestReply(400, "BadRequestException", "Validation failed (numeric string is expected)") };
    }
    const userId = Number(userIdParam);
    const notMember = nestReply(404, "NotFoundException", `User with ID ${userId} is not part of this OAuth client.`);
    const user = deps.state.getUser(userId);
    if (user?.kind !== "managed" || user.clientId !== clientId) return { reply: notMember };
    return {
      commit: () => {
        const pair = deps.state.forceRefresh(clientId, userId);
        return pair ? { success: managedSuccess(pair, deps.state.now()) } : { error: notMember };
      },
    };
  });
}

const GRANT_ERRORS = {
  invalid: "invalid_refresh_token",
  mismatch: "client_id_mismatch",
  revoked: "refresh_token_revoked",
} as const;

/** POST /v2/auth/oauth2/token — refresh_token grant with raw RFC 6749 bodies (docs/calcom-api.md#oauth2-token-endpoint). */
export function oauth2Token(ctx: Ctx, deps: TokenDeps, body: Body): Promise<void> {
  return runTokenEndpoint(ctx, deps, () => {
    if (body === "invalid") return { reply: oauthReply(400, "invalid_request", "invalid_body") };
    const field = (name: string): string | undefined => {
      const v = body?.[name];
      return typeof v === "string" && v !== "" ? v : undefined;
    };
    const clientId = field("client_id");
    const grantType = field("grant_type");
    if (!clientId) return { reply: oauthReply(400, "invalid_request", "client_id is required") };
    if (!grantType) return { reply: oauthReply(400, "invalid_request", "grant_type is required") };
    if (grantType !== "refresh_token" && grantType !== "authorization_code") {
      return { reply: oauthReply(400, "unsupported_grant_type", "unsupported_grant_type") };
    }
    const refreshToken = field("refresh_token");
    if (grantType === "refresh_token" && !refreshToken) {
      return { reply: oauthReply(400, "invalid_request", "refresh_token is required") };
    }
    const secret = deps.state.clientSecret("oauth2", clientId);
    if (secret === undefined) return { reply: oauthReply(401, "invalid_client", "client_not_found") };
    if (field("client_secret") !== secret) return { reply: oauthReply(401, "invalid_client", "invalid_client_credentials") };
    // The fake never issues authorization codes, so every code exchange fails like an expired code.
    if (grantType === "authorization_code" || !refreshToken) {
      return { reply: oauthReply(400, "invalid_grant", "code_invalid_or_expired") };
    }
    const found = deps.state.lookupOAuth2Refresh(clientId, refreshToken);
    if (found.status !== "ok") return { reply: oauthReply(400, "invalid_grant", GRANT_ERRORS[found.status]) };
    const { row } = found;
    return {
      commit: () => {
        return { success: oauth2Success(deps.state.commitOAuth2Refresh(row)) };
      },
    };
  });
}
