/**
 * The three token endpoints (managed refresh, force-refresh, OAuth 2.0 token: refresh and code grants) and their faults.
 * Each handler splits into a request-start lookup and a commit that runs after `latencyMs`, so two
 * concurrent refreshes with the same token really race (the loser gets Prisma's 404, docs/calcom-api.md#races).
 */
import type { AuthorizationCodes, CodeRequest } from "./auth-codes.js";
import { authenticateClient } from "./auth.js";
import { isBeforeCommit } from "./faults.js";
import type { FaultController } from "./faults.js";
import type { Body, Ctx } from "./http-io.js";
import { nestError, oauthError, sendJson, sendText } from "./http-io.js";
import { rateHeaders } from "./rate-limiter.js";
import type { CalcomState } from "./state.js";
import { isBodyFault, managedSuccess, oauth2Success, type Success } from "./token-bodies.js";
import type { Socket } from "node:net";
import type { Fault, RouteKey, StormStatus, TokenCallRecord } from "./types.js";

export interface TokenDeps {
  state: CalcomState;
  codes: AuthorizationCodes;
  faults: FaultController;
  /** Tracked timer, cleared by close(). */
  sleep: (ms: number) => Promise<void>;
  blockMs: number;
  onTokenCall?: (call: TokenCallRecord) => void;
}

type Reply = (ctx: Ctx) => void;
type Committed = { error: Reply } | { success: Success; calUserId?: number | undefined };
/** `calUserId`: the user the call concerns, when the lookup found one (a rotated-away token still names its user). */
type Prepared = ({ reply: Reply } | { commit: () => Committed }) & { calUserId?: number | undefined };

export const TOO_MANY_REQUESTS = "CustomThrottlerGuard - Too many requests. Please try again later.";
const gatewayPage = (status: string): string =>
  `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`;
const HTML_502 = gatewayPage("502 Bad Gateway");
const HTML_504 = gatewayPage("504 Gateway Time-out");
// Truncated on purpose and token-free, so a client that logs the raw body leaks nothing.
const MALFORMED_JSON = '{"status":"success","data":{"accessToken';

/** Faults that keep a committed pair (or its refresh token) from the caller. */
const WITHHOLDS: ReadonlySet<Fault> = new Set(["dropAfterCommit", "hangAfterCommit", "malformedJson", "noRefreshToken"]);
/** A connection that closes this soon after an answer may belong to a caller that died before reading it. */
const CLOSED_AFTER_MS = 1_000;

interface Answered {
  outcome: TokenCallRecord["outcome"];
  /** The fake's clock right after the answer was written (or held back). */
  at: number;
  calUserId?: number | undefined;
  /** The fault that answered in Cal.com's place, or withheld the answer (`withheld`). */
  fault?: TokenCallRecord["fault"];
  withheld?: boolean;
}

/** Answers the call, then records what became of it (stats, and `onTokenCall` when set). */
async function runTokenEndpoint(ctx: Ctx, deps: TokenDeps, route: RouteKey, prepare: () => Prepared): Promise<void> {
  const arrivedAt = deps.state.now();
  const remotePort = ctx.req.socket.remotePort;
  const answered = await answerTokenCall(ctx, deps, route, prepare);
  const { calUserId, fault, withheld, outcome } = answered;
  // Nothing was written although no fault held the answer back: the caller's connection was already gone.
  const gone = !withheld && !ctx.res.headersSent;
  if (outcome === "rotated" && withheld) deps.state.stats.rotationsDroppedByFault++;
  if (outcome === "rotated" && gone) deps.state.stats.rotationsUndeliverable++;
  const observe = deps.onTokenCall;
  if (!observe) return;
  const record: TokenCallRecord = {
    route,
    arrivedAt,
    answeredAt: answered.at,
    outcome,
    delivery: gone ? "gone" : withheld ? "withheld" : "delivered",
    ...(remotePort !== undefined ? { remotePort } : {}),
    ...(calUserId !== undefined ? { calUserId } : {}),
    ...(fault !== undefined ? { fault } : {}),
  };
  if (record.delivery !== "delivered") return observe(record);
  const stop = onSocketClose(ctx.req.socket, deps.state.now, (closedAt) => {
    record.delivery = "closedAfter";
    record.closedAt = closedAt;
  });
  await deps.sleep(CLOSED_AFTER_MS);
  stop();
  observe(record);
}

async function answerTokenCall(ctx: Ctx, deps: TokenDeps, route: RouteKey, prepare: () => Prepared): Promise<Answered> {
  const planned = deps.faults.take(route);
  const fault = planned && "fault" in planned ? planned.fault : null;
  const storm = planned && "storm" in planned ? planned.storm : null;
  const stats = deps.state.stats;
  const deadBefore = stats.deadRefreshTokenUses;
  const prepared = prepare();
  const deadAtLookup = stats.deadRefreshTokenUses > deadBefore;
  // `at` is read right after the answer is written, in the same tick (an await would let other work run first).
  const other = (dead = deadAtLookup): Answered => ({
    outcome: dead ? "deadRefreshToken" : "other",
    calUserId: prepared.calUserId,
    at: deps.state.now(),
  });
  await deps.sleep(deps.faults.latencyMs);
  if (storm && !storm.afterCommit) {
    answerStorm(ctx, storm.status);
    return { ...other(), fault: `storm${storm.status}` };
  }
  if (fault && isBeforeCommit(fault)) {
    answerFault(ctx, deps, fault);
    return { ...other(), fault, withheld: fault === "hang" };
  }
  if ("reply" in prepared) {
    prepared.reply(ctx);
    return other();
  }
  const deadBeforeCommit = stats.deadRefreshTokenUses;
  const done = prepared.commit();
  if ("error" in done) {
    done.error(ctx);
    return other(stats.deadRefreshTokenUses > deadBeforeCommit);
  }
  const rotated = { outcome: "rotated" as const, calUserId: done.calUserId ?? prepared.calUserId };
  if (storm) {
    answerStorm(ctx, 504); // committed, then the proxy gave up waiting
    return { ...rotated, at: deps.state.now(), fault: "storm504", withheld: true };
  }
  answerSuccess(ctx, done.success, fault);
  const at = deps.state.now();
  return fault ? { ...rotated, at, fault, withheld: WITHHOLDS.has(fault) } : { ...rotated, at };
}

/** One close listener per socket (keep-alive sockets carry many calls), shared by the calls watching it. */
const closeWatchers = new WeakMap<Socket, Set<(closedAt: number) => void>>();

function onSocketClose(socket: Socket, now: () => number, fn: (closedAt: number) => void): () => void {
  let watchers = closeWatchers.get(socket);
  if (!watchers) {
    const set = new Set<(closedAt: number) => void>();
    closeWatchers.set(socket, set);
    socket.once("close", () => {
      const at = now();
      for (const w of set) w(at);
      set.clear();
    });
    watchers = set;
  }
  const own = watchers;
  own.add(fn);
  return () => own.delete(fn);
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
  return runTokenEndpoint(ctx, deps, "managed.refresh", () => {
    if (body === "invalid") return { reply: INVALID_BODY };
    const auth = authenticateClient(deps.state, clientId, ctx.req.headers);
    if (auth) return { reply: nestReply(auth.status, auth.code, auth.message) };
    const refreshToken = body?.refreshToken;
    if (typeof refreshToken !== "string") return { reply: INVALID_BODY };
    const calUserId = deps.state.refreshTokenOwner(refreshToken);
    if (deps.state.lookupManagedRefresh(clientId, refreshToken) !== "ok") {
      return { reply: nestReply(400, "BadRequestException", "Invalid refresh token"), calUserId };
    }
    return {
      calUserId,
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
  return runTokenEndpoint(ctx, deps, "managed.forceRefresh", () => {
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
      calUserId: userId,
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
  return runTokenEndpoint(ctx, deps, "oauth2.token", () => {
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
    const code = field("code");
    if (grantType === "refresh_token" && !refreshToken) {
      return { reply: oauthReply(400, "invalid_request", "refresh_token is required") };
    }
    if (grantType === "authorization_code" && !code) return { reply: oauthReply(400, "invalid_request", "code is required") };
    const secret = deps.state.clientSecret("oauth2", clientId);
    if (secret === undefined) return { reply: oauthReply(401, "invalid_client", "client_not_found") };
    // A confidential client proves itself with its secret; a public one has none (its codes carry PKCE instead).
    if (secret !== null && field("client_secret") !== secret) {
      return { reply: oauthReply(401, "invalid_client", "invalid_client_credentials") };
    }
    if (code) return codeGrant(deps, { clientId, code, redirectUri: field("redirect_uri"), codeVerifier: field("code_verifier") });
    if (!refreshToken) return { reply: oauthReply(400, "invalid_request", "refresh_token is required") };
    const found = deps.state.lookupOAuth2Refresh(clientId, refreshToken);
    if (found.status !== "ok") {
      return { reply: oauthReply(400, "invalid_grant", GRANT_ERRORS[found.status]), calUserId: deps.state.refreshTokenOwner(refreshToken) };
    }
    const { row } = found;
    return {
      commit: () => {
        return { success: oauth2Success(deps.state.commitOAuth2Refresh(row)), calUserId: row.userId };
      },
    };
  });
}

/**
 * grant_type=authorization_code (docs/calcom-api.md#oauth2-authorization-code): the code's checks at
 * request start, its single use in the commit, so of two concurrent exchanges only one gets a pair.
 */
function codeGrant(deps: TokenDeps, req: CodeRequest): Prepared {
  const verdict = deps.codes.check(req);
  if (verdict !== "ok") return { reply: oauthReply(400, "invalid_grant", verdict) };
  return {
    commit: () => {
      const pair = deps.codes.commit(req.code);
      return pair ? { success: oauth2Success(pair) } : { error: oauthReply(400, "invalid_grant", "code_invalid_or_expired") };
    },
  };
}
