import { z } from "zod";
import {
  apiOrigin,
  bearerToken,
  clientId,
  clientSecret,
  encryptionKeys,
  flag,
  hashTag,
  int,
  millis,
  seconds,
  spanSeconds,
  url,
} from "./fields.js";
import { hasKnownSslMode, SSL_MODES } from "../store/pg-tls.js";

export const DEFAULT_QUEUE_PREFIX = "caltok";

const DAY_S = 86_400;
/** Cal.com's OAuth2 refresh tokens live 30 days (src/core/grant-policy.ts). */
const OAUTH2_REFRESH_TOKEN_TTL_S = 30 * DAY_S;

/**
 * Every number has both bounds: a typo must not pass as a setting (PORT=70000), and no duration may
 * exceed what a Node timer holds (`seconds`/`millis` enforce it on the bounds themselves).
 */
export const envSchema = z.object({
  DATABASE_URL: url(/^postgres(ql)?$/).refine(hasKnownSslMode, `sslmode must be one of ${SSL_MODES.join(", ")}`),
  /** TLS for Postgres when DATABASE_URL has no sslmode of its own (docs/deploy-heroku.md#postgres-tls). */
  PGSSLMODE: z.enum(SSL_MODES).optional(),
  REDIS_URL: url(/^rediss?$/).default("redis://127.0.0.1:6379"),
  /** REDIS_URL names one node of a Redis Cluster (the client discovers the rest); QUEUE_PREFIX must then be a hash tag. */
  REDIS_CLUSTER: flag.default(false),
  CAL_API_URL: apiOrigin.default({ origin: "https://api.cal.com", note: null }),
  /** Cal.com Platform client (managed users): both or neither. At least one kind of client is set (clientProblems). */
  CAL_CLIENT_ID: clientId.optional(),
  CAL_CLIENT_SECRET: clientSecret.optional(),
  /** Cal.com OAuth 2.0 app (oauth2 users), on its own; no secret = a public client using PKCE. */
  CAL_OAUTH_CLIENT_ID: clientId.optional(),
  CAL_OAUTH_CLIENT_SECRET: clientSecret.optional(),
  TOKEN_ENCRYPTION_KEYS: encryptionKeys,
  REFRESH_LEAD_SECONDS: seconds(0, 86_400).default(600),
  REFRESH_JITTER_SECONDS: seconds(0, 86_400).default(300),
  ON_DEMAND_BUFFER_SECONDS: seconds(0, 3_600).default(120),
  /** How long a request path waits for an expired token's refresh before a retryable result. */
  ON_DEMAND_WAIT_MS: millis(100, 30_000).default(2_000),
  /** Minimum time between two refreshes of one user (stops refresh loops). */
  MIN_REFRESH_INTERVAL_SECONDS: seconds(0, 3_600).default(30),
  /**
   * The refresh policy (docs/architecture.md#scheduling). "Active" = a request path used the token
   * within this long; at least two minutes, because request paths record use at most once a minute.
   */
  KEEP_FRESH_WINDOW_SECONDS: spanSeconds(120, 30 * DAY_S).default(300),
  /** An idle OAuth2 user is refreshed at refresh-token expiry − lead − random(0, jitter). */
  KEEP_ALIVE_LEAD_SECONDS: spanSeconds(3_600, 30 * DAY_S).default(3 * DAY_S),
  KEEP_ALIVE_JITTER_SECONDS: spanSeconds(0, 30 * DAY_S).default(2 * DAY_S),
  /** The at-risk gauge counts OAuth2 users whose refresh token expires within this long. */
  REFRESH_TOKEN_AT_RISK_SECONDS: spanSeconds(0, 30 * DAY_S).default(DAY_S),
  /** How far ahead an idle managed user's row is parked (no refresh; the next request refreshes inline). */
  PARK_SECONDS: spanSeconds(60, 365 * DAY_S).default(30 * DAY_S),
  /** How long a request path may serve a user's access token from this process's memory; 0 turns it off. */
  TOKEN_CACHE_SECONDS: seconds(0, 300).default(30),
  /** How many users' access tokens one process keeps in memory. */
  TOKEN_CACHE_MAX_USERS: int(1, 1_000_000).default(10_000),
  SWEEP_INTERVAL_SECONDS: seconds(1, 86_400).default(60),
  WORKER_CONCURRENCY: int(1, 500).default(10),
  CAL_REFRESH_RATE_PER_MINUTE: int(1, 1_000_000).default(450),
  CAL_HTTP_TIMEOUT_MS: millis(100, 120_000).default(10_000),
  /** Base lease held outside Cal.com calls; the refresher extends it to cover each call's timeout. */
  REFRESH_LEASE_SECONDS: seconds(2, 120).default(5),
  /** An age cutoff in a query, not a timer: bounded as a count. */
  AUDIT_RETENTION_DAYS: int(1, 3_650).default(30),
  EVENTS_WEBHOOK_URL: url(/^https?$/).optional(),
  EVENTS_WEBHOOK_SECRET: z.string().min(16).optional(),
  BULL_BOARD_USERNAME: z.string().min(1).optional(),
  BULL_BOARD_PASSWORD: z.string().min(8).optional(),
  METRICS_BEARER_TOKEN: bearerToken.optional(),
  PORT: int(0, 65_535).default(3000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  QUEUE_PREFIX: z.string().trim().min(1).default(DEFAULT_QUEUE_PREFIX),
});

/**
 * Rules that span several variables. Checked on the raw strings so they are reported together with
 * per-variable problems (zod skips object refinements when any field failed).
 */
export function crossFieldProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [...clientProblems(env), ...clusterProblems(env), ...keepAliveProblems(env)];
  if (env.EVENTS_WEBHOOK_URL && !env.EVENTS_WEBHOOK_SECRET) {
    problems.push("EVENTS_WEBHOOK_SECRET: required when EVENTS_WEBHOOK_URL is set");
  }
  if (Boolean(env.BULL_BOARD_USERNAME) !== Boolean(env.BULL_BOARD_PASSWORD)) {
    problems.push("BULL_BOARD_PASSWORD: set both BULL_BOARD_USERNAME and BULL_BOARD_PASSWORD, or neither");
  }
  return problems;
}

/**
 * The keep-alive must fall inside an OAuth2 refresh token's 30 days (or every refresh would be followed
 * by another at once), and before the at-risk alert (or every keep-alive would raise it first).
 */
function keepAliveProblems(env: Record<string, string | undefined>): string[] {
  // Each value as its own rule reads it (default when unset); one that breaks that rule is reported there only.
  const n = (name: "KEEP_ALIVE_LEAD_SECONDS" | "KEEP_ALIVE_JITTER_SECONDS" | "REFRESH_TOKEN_AT_RISK_SECONDS"): number | null => {
    const parsed = envSchema.shape[name].safeParse(env[name]);
    return parsed.success ? parsed.data : null;
  };
  const lead = n("KEEP_ALIVE_LEAD_SECONDS");
  const jitter = n("KEEP_ALIVE_JITTER_SECONDS");
  const atRisk = n("REFRESH_TOKEN_AT_RISK_SECONDS");
  const problems: string[] = [];
  if (lead !== null && jitter !== null && lead + jitter >= OAUTH2_REFRESH_TOKEN_TTL_S) {
    problems.push(
      `KEEP_ALIVE_LEAD_SECONDS: with KEEP_ALIVE_JITTER_SECONDS it must stay below an OAuth2 refresh token's ${OAUTH2_REFRESH_TOKEN_TTL_S} s (30 days); got ${lead} + ${jitter}`,
    );
  }
  if (lead !== null && atRisk !== null && atRisk >= lead) {
    problems.push(
      `REFRESH_TOKEN_AT_RISK_SECONDS: must be below KEEP_ALIVE_LEAD_SECONDS (${lead}), or every keep-alive raises the alert first; got ${atRisk}`,
    );
  }
  return problems;
}

/**
 * Redis Cluster (docs/operations.md#redis-cluster): BullMQ's scripts and ours touch several keys of one
 * prefix at once, which a cluster allows only within one slot, so the prefix must carry a hash tag.
 * A cluster has database 0 only. (An unparsable REDIS_CLUSTER or REDIS_URL is reported by the schema.)
 */
function clusterProblems(env: Record<string, string | undefined>): string[] {
  const on = flag.safeParse(env.REDIS_CLUSTER ?? "false");
  if (!on.success || !on.data) return [];
  const problems: string[] = [];
  const prefix = (env.QUEUE_PREFIX ?? DEFAULT_QUEUE_PREFIX).trim();
  if (hashTag(prefix) === null) {
    problems.push(
      `QUEUE_PREFIX: must contain a Redis hash tag such as {${prefix.replace(/[{}]/g, "") || DEFAULT_QUEUE_PREFIX}} when REDIS_CLUSTER is on ` +
        `(every key of the prefix must share one slot); got ${JSON.stringify(prefix)}`,
    );
  }
  const path = redisUrlPath(env.REDIS_URL);
  if (path !== "" && path !== "0") problems.push(`REDIS_URL: a Redis Cluster has only database 0; remove "/${path}" from the URL`);
  return problems;
}

/** The path of a redis:// URL without its slashes (the database number), or "" (none, or not a URL). */
function redisUrlPath(raw: string | undefined): string {
  if (!raw) return "";
  try {
    return new URL(raw.trim()).pathname.replace(/^\/+|\/+$/g, "");
  } catch {
    return "";
  }
}

/**
 * The two kinds of Cal.com client, each on its own (docs/oauth2.md#configuration): the Platform client
 * needs its id and secret together; the OAuth 2.0 app needs its id, and a secret only if it is a
 * confidential client. At least one must be configured. One line per problem, values never echoed.
 */
function clientProblems(env: Record<string, string | undefined>): string[] {
  const { CAL_CLIENT_ID: id, CAL_CLIENT_SECRET: secret, CAL_OAUTH_CLIENT_ID: oauthId, CAL_OAUTH_CLIENT_SECRET: oauthSecret } = env;
  const problems: string[] = [];
  if (id && !secret) problems.push("CAL_CLIENT_SECRET: required when CAL_CLIENT_ID is set (the Platform client needs both)");
  if (secret && !id) problems.push("CAL_CLIENT_ID: required when CAL_CLIENT_SECRET is set (the Platform client needs both)");
  if (oauthSecret && !oauthId) problems.push("CAL_OAUTH_CLIENT_ID: required when CAL_OAUTH_CLIENT_SECRET is set");
  if (!id && !secret && !oauthId && !oauthSecret) problems.push(NO_CLIENT);
  return problems;
}

export const NO_CLIENT =
  "CAL_OAUTH_CLIENT_ID or CAL_CLIENT_ID: required: no Cal.com client is configured; set CAL_OAUTH_CLIENT_ID (an OAuth 2.0 app; " +
  "CAL_OAUTH_CLIENT_SECRET too unless it is a public PKCE client) and/or CAL_CLIENT_ID and CAL_CLIENT_SECRET (a Platform client, for managed users)";

export type Env = z.output<typeof envSchema>;
