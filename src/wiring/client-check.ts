/**
 * Which kinds of user this process can refresh, from the configured Cal.com clients, and the boot check
 * of the worker and web processes against the stored rows (docs/oauth2.md#the-boot-check): a kind that
 * is stored but has no client configured stops the process with one line per kind.
 */
import type { Config } from "../config/config.js";
import { ConfigError } from "../core/errors.js";
import { withTimeout } from "../core/timeout.js";
import type { CalTokenKind } from "../core/types.js";
import type { Logger } from "../log/logger.js";
import type { PrismaClient } from "../store/prisma.js";
import { countActiveByKind, type KindCounts } from "../store/token-kinds.js";
import type { Releasers } from "./releasers.js";

/** A database that does not answer must not hold the start for long: the refresher guards each refresh anyway. */
const CHECK_TIMEOUT_MS = 5_000;

/** The kinds whose Cal.com client is not configured: managed needs the Platform client, oauth2 the OAuth 2.0 app. */
export function unconfiguredKinds(config: Config): CalTokenKind[] {
  return [...(config.calcom.platform ? [] : (["managed"] as const)), ...(config.calcom.oauth2 ? [] : (["oauth2"] as const))];
}

/** One line per stored kind without its client, in the form of a configuration problem. */
export function storedKindProblems(missing: readonly CalTokenKind[], counts: KindCounts): string[] {
  const users = (n: number, kind: string) => (n === 1 ? `1 active ${kind} user is stored` : `${n} active ${kind} users are stored`);
  const problems: string[] = [];
  if (missing.includes("managed") && counts.managed > 0) {
    problems.push(
      `CAL_CLIENT_ID: required: ${users(counts.managed, "managed")}, and only the Platform client (CAL_CLIENT_ID, CAL_CLIENT_SECRET) can refresh them (docs/oauth2.md#the-boot-check)`,
    );
  }
  if (missing.includes("oauth2") && counts.oauth2 > 0) {
    problems.push(
      `CAL_OAUTH_CLIENT_ID: required: ${users(counts.oauth2, "oauth2")}, and only the OAuth 2.0 app (CAL_OAUTH_CLIENT_ID, plus CAL_OAUTH_CLIENT_SECRET unless it is a public client) can refresh them; the Platform client is no substitute (docs/oauth2.md#why-no-fallback)`,
    );
  }
  return problems;
}

/**
 * Throws a ConfigError when a stored kind has no client, after closing what the caller opened so far
 * (`releasers`). Runs no query when both clients are set. If the database cannot be asked, the process
 * starts with a warning: each refresh of an unconfigured kind then fails on its own with
 * `config.client_not_configured`, without calling Cal.com.
 */
export async function checkClientsForStoredKinds(config: Config, prisma: PrismaClient, log: Logger, releasers: Releasers): Promise<void> {
  const missing = unconfiguredKinds(config);
  if (missing.length === 0) return;
  let counts: KindCounts;
  try {
    counts = await withTimeout(countActiveByKind(prisma), CHECK_TIMEOUT_MS, "stored token kinds check");
  } catch (err) {
    log.warn(
      { err, unconfigured: missing },
      "could not check the stored token kinds against the configured Cal.com clients; starting anyway",
    );
    return;
  }
  const problems = storedKindProblems(missing, counts);
  if (problems.length > 0) {
    await releasers.closeAll();
    throw new ConfigError(problems);
  }
  log.info({ unconfigured: missing }, "no stored users need the Cal.com clients that are not configured");
}
