/**
 * `completeCalConnection`: the web app's OAuth 2.0 callback in one call (docs/oauth2.md#the-callback).
 * Exchanges the authorization code at Cal.com (with the PKCE verifier where used), stores the first pair
 * through the same path as `saveCalTokens` (canonical ULID, kind oauth2, next refresh scheduled) and
 * returns the user's status. Failures are thrown as coded AppErrors: a refused code is
 * `connect.code_rejected`, Cal.com down is retryable, a missing OAuth 2.0 app is `config.client_not_configured`.
 *
 * The exchange does not draw on the shared token-call budget nor wait for the configuration breaker: it
 * is one call per user action, it rotates nothing (no grant can be lost by it), and a code lives ten
 * minutes, so deferring it would only make the user start again (docs/oauth2.md#the-callback).
 */
import type { CalRefreshResult } from "../core/calcom-result.js";
import { AppError } from "../core/errors.js";
import { failure, failureFromCalcom, type Failure } from "../core/failures.js";
import { assumedRefreshTokenExpiry } from "../core/grant-policy.js";
import type { CalcomTokenApi, TokenMeta } from "../core/ports.js";
import type { Clock } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import { type CompleteCalConnectionInput, type ParsedConnectInput, parseConnectInput, verifierRequired } from "./connect-input.js";
import { checkSaveInput } from "./save-input.js";
import type { SavePair } from "./save-tokens.js";
import { toStatusReport } from "./token-status.js";
import type { CalTokenStatusReport } from "./types.js";

export type { CompleteCalConnectionInput } from "./connect-input.js";

export type CompleteCalConnection = (input: CompleteCalConnectionInput) => Promise<CalTokenStatusReport>;

export interface ConnectDeps {
  calcom: Pick<CalcomTokenApi, "exchangeAuthorizationCode">;
  /** The configured OAuth 2.0 app, or null when there is none. A public client has no secret. */
  app: { publicClient: boolean } | null;
  savePair: SavePair;
  /** The `onDemand` component logger. */
  log: Logger;
  clock: Clock;
}

export function createCompleteConnection(deps: ConnectDeps): CompleteCalConnection {
  return async function completeCalConnection(input) {
    const req = parseConnectInput(input);
    if (!deps.app) throw appError(failure("oauth2AppMissing"));
    if (deps.app.publicClient && req.codeVerifier === undefined) throw verifierRequired();
    const sentAt = deps.clock();
    const result = await deps.calcom.exchangeAuthorizationCode({
      code: req.code,
      redirectUri: req.redirectUri,
      ...(req.codeVerifier === undefined ? {} : { codeVerifier: req.codeVerifier }),
    });
    if (result.kind !== "refreshed") {
      deps.log.warn(
        { userUlid: req.userUlid, kind: result.kind, status: result.status },
        "Cal.com connection not completed: code exchange failed",
      );
      throw appError(exchangeFailure(result));
    }
    const meta = await store(deps, req, result, result.sentAt ?? sentAt);
    deps.log.info({ userUlid: req.userUlid, expirySource: result.expiry?.source ?? null }, "Cal.com connection completed");
    return toStatusReport(meta, deps.clock());
  };
}

/** The first pair, through the `saveCalTokens` rules and save path; the code is spent whatever happens here. */
async function store(
  deps: ConnectDeps,
  req: ParsedConnectInput,
  result: Extract<CalRefreshResult, { kind: "refreshed" }>,
  sentAt: Date,
): Promise<TokenMeta> {
  const { pair } = result;
  const checked = checkSaveInput({
    userUlid: req.userUlid,
    accessToken: pair.accessToken,
    refreshToken: pair.refreshToken,
    accessTokenExpiresAt: pair.accessTokenExpiresAt,
    // Cal.com does not send it: 30 days from when the exchange was sent (src/core/grant-policy.ts).
    refreshTokenExpiresAt: assumedRefreshTokenExpiry("oauth2", sentAt, pair.refreshTokenExpiresAt),
    kind: "oauth2",
  });
  if (!checked.ok) {
    deps.log.error({ userUlid: req.userUlid, fields: checked.problems.map((p) => p.field) }, "Cal.com issued a pair that cannot be stored");
    throw appError(failure("calcomMalformed", "the issued pair cannot be stored; start the connection again"));
  }
  const { missingCalUserId: _none, ...parsed } = checked.value;
  try {
    return await deps.savePair(parsed);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    // The code cannot be exchanged twice: retrying this call would only get connect.code_rejected.
    throw new AppError(err.code, `${err.message}; the authorization code is spent: start the connection again`, {
      retryable: err.retryable,
    });
  }
}

function exchangeFailure(result: Exclude<CalRefreshResult, { kind: "refreshed" }>): Failure {
  // Cal.com's code and description (scrubbed, no request data) say why: expired, used, redirect URI, PKCE.
  if (result.kind === "rejected") return failure("codeRejected", result.message);
  return failureFromCalcom(result);
}

function appError(f: Failure): AppError {
  return new AppError(f.code, f.message, { retryable: f.retryable });
}
