/**
 * A refresh of a kind whose Cal.com client is not configured (docs/oauth2.md#configuration) fails with
 * `config.client_not_configured` before any lease or call, instead of calling Cal.com with nothing. The
 * row is left alone (nothing is wrong with the user), nothing is audited, and the other kind keeps
 * working: the fleet's configuration breaker is for Cal.com refusing a client, not for a missing one.
 */
import { failure } from "../core/failures.js";
import type { TokenRecord } from "../core/ports.js";
import { failed, type RefreshContext } from "./attempt.js";
import type { RefreshOutcome } from "./types.js";

export function clientMissing(ctx: RefreshContext, token: TokenRecord): RefreshOutcome | null {
  if (!ctx.unconfiguredKinds?.includes(token.kind)) return null;
  const error = failure(token.kind === "managed" ? "platformClientMissing" : "oauth2AppMissing");
  ctx.log.error({ userUlid: token.userUlid, kind: token.kind, code: error.code }, `not refreshed: ${error.message}`);
  return failed(token, error);
}
