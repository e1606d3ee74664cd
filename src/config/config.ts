import type { z } from "zod";
import { ConfigError } from "../core/errors.js";
import type { GrantPolicy } from "../core/grant-policy.js";
import { crossFieldProblems, envSchema } from "./schema.js";
import { SSL_MODES, withSslMode } from "../store/pg-tls.js";

/** Typed configuration. Built once per process by its composition root and passed down. */
export interface Config {
  databaseUrl: string;
  redisUrl: string;
  /** REDIS_URL is one node of a Redis Cluster (REDIS_CLUSTER); the prefix is then a hash tag (checked). */
  redisCluster: boolean;
  calcom: {
    apiUrl: string;
    /** The Platform OAuth client (managed users), or null when not configured (docs/oauth2.md#configuration). */
    platform: { clientId: string; clientSecret: string } | null;
    /**
     * The OAuth 2.0 app (oauth2 users), or null when not configured. A null `clientSecret` is a public
     * client, which authenticates with PKCE instead. Never the Platform client's values: they are
     * different clients at Cal.com (docs/oauth2.md#why-no-fallback).
     */
    oauth2: { clientId: string; clientSecret: string | null } | null;
    timeoutMs: number;
  };
  encryptionKeys: { id: string; key: Buffer }[];
  refresh: {
    leadMs: number;
    jitterMs: number;
    onDemandBufferMs: number;
    /** Cap on how long a request path waits for an expired token's refresh (ON_DEMAND_WAIT_MS). */
    onDemandWaitMs: number;
    /** Minimum time between two refreshes of one user (MIN_REFRESH_INTERVAL_SECONDS); stops loops. */
    minIntervalMs: number;
    /** The in-process access-token cache (TOKEN_CACHE_SECONDS, 0 = off; TOKEN_CACHE_MAX_USERS). */
    cache: { ttlMs: number; maxUsers: number };
    /** Base lease held outside Cal.com calls, renewed before each call to cover its timeout. */
    leaseMs: number;
    ratePerMinute: number;
  };
  /**
   * The refresh policy's spans (docs/architecture.md#scheduling; src/core/grant-policy.ts). Date
   * arithmetic only, never a timer, so they may exceed a Node timer's 24.8 days. `grantPolicy(config)`
   * combines them with the keep-fresh lead and jitter.
   */
  policy: {
    /** KEEP_FRESH_WINDOW_SECONDS: a user whose token a request path used within this long is kept fresh. */
    keepFreshWindowMs: number;
    /** KEEP_ALIVE_LEAD_SECONDS, KEEP_ALIVE_JITTER_SECONDS: an idle OAuth2 user's refresh before the refresh token expires. */
    keepAliveLeadMs: number;
    keepAliveJitterMs: number;
    /** REFRESH_TOKEN_AT_RISK_SECONDS: the at-risk gauge's window. */
    refreshTokenAtRiskMs: number;
    /** PARK_SECONDS: how far ahead an idle managed user is parked. */
    parkMs: number;
  };
  sweepIntervalMs: number;
  /** Audit rows and delivered events older than this are pruned by the sweep. */
  auditRetentionMs: number;
  workerConcurrency: number;
  events: { webhookUrl: string; secret: string } | null;
  bullBoard: { username: string; password: string } | null;
  /** `/metrics` accepts `Authorization: Bearer <this>` when set. */
  metricsBearerToken: string | null;
  port: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  queuePrefix: string;
  /** Values that were normalised (e.g. a trailing /v2 dropped from CAL_API_URL), for the root to log once. */
  notes: string[];
}

/**
 * The only reader of the environment. Every problem is reported at once; values of secrets are never
 * echoed (zod issues carry paths and rules, not inputs, and we print only those).
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable counts as unset (a copied .env.example leaves optional ones empty).
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const parsed = envSchema.safeParse(present);
  const problems = [...(parsed.success ? [] : parsed.error.issues.map(describeIssue)), ...crossFieldProblems(present)];
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const e = parsed.data;
  return {
    databaseUrl: withSslMode(e.DATABASE_URL, e.PGSSLMODE),
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    calcom: {
      apiUrl: e.CAL_API_URL.origin,
      // crossFieldProblems has checked the pairs: the Platform client has both values or neither.
      platform: e.CAL_CLIENT_ID && e.CAL_CLIENT_SECRET ? { clientId: e.CAL_CLIENT_ID, clientSecret: e.CAL_CLIENT_SECRET } : null,
      oauth2: e.CAL_OAUTH_CLIENT_ID ? { clientId: e.CAL_OAUTH_CLIENT_ID, clientSecret: e.CAL_OAUTH_CLIENT_SECRET ?? null } : null,
      timeoutMs: e.CAL_HTTP_TIMEOUT_MS,
    },
    encryptionKeys: e.TOKEN_ENCRYPTION_KEYS,
    refresh: {
      leadMs: e.REFRESH_LEAD_SECONDS * 1000,
      jitterMs: e.REFRESH_JITTER_SECONDS * 1000,
      onDemandBufferMs: e.ON_DEMAND_BUFFER_SECONDS * 1000,
      onDemandWaitMs: e.ON_DEMAND_WAIT_MS,
      minIntervalMs: e.MIN_REFRESH_INTERVAL_SECONDS * 1000,
      cache: { ttlMs: e.TOKEN_CACHE_SECONDS * 1000, maxUsers: e.TOKEN_CACHE_MAX_USERS },
      leaseMs: e.REFRESH_LEASE_SECONDS * 1000,
      ratePerMinute: e.CAL_REFRESH_RATE_PER_MINUTE,
    },
    policy: {
      keepFreshWindowMs: e.KEEP_FRESH_WINDOW_SECONDS * 1000,
      keepAliveLeadMs: e.KEEP_ALIVE_LEAD_SECONDS * 1000,
      keepAliveJitterMs: e.KEEP_ALIVE_JITTER_SECONDS * 1000,
      refreshTokenAtRiskMs: e.REFRESH_TOKEN_AT_RISK_SECONDS * 1000,
      parkMs: e.PARK_SECONDS * 1000,
    },
    sweepIntervalMs: e.SWEEP_INTERVAL_SECONDS * 1000,
    auditRetentionMs: e.AUDIT_RETENTION_DAYS * 24 * 3600_000,
    workerConcurrency: e.WORKER_CONCURRENCY,
    events: e.EVENTS_WEBHOOK_URL && e.EVENTS_WEBHOOK_SECRET ? { webhookUrl: e.EVENTS_WEBHOOK_URL, secret: e.EVENTS_WEBHOOK_SECRET } : null,
    bullBoard: e.BULL_BOARD_USERNAME && e.BULL_BOARD_PASSWORD ? { username: e.BULL_BOARD_USERNAME, password: e.BULL_BOARD_PASSWORD } : null,
    metricsBearerToken: e.METRICS_BEARER_TOKEN ?? null,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    queuePrefix: e.QUEUE_PREFIX,
    notes: [e.CAL_API_URL.note].filter((n): n is string => n !== null),
  };
}

/** The refresh policy of src/core/grant-policy.ts, from the configuration. */
export function grantPolicy(config: Pick<Config, "refresh" | "policy">): GrantPolicy {
  return { leadMs: config.refresh.leadMs, jitterMs: config.refresh.jitterMs, ...config.policy };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const name = issue.path.length > 0 ? issue.path.join(".") : "(environment)";
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) return `${name}: required`;
  return `${name}: ${issue.message}`;
}

/** For tools that need only the database (migrations): the same validation, without the rest. */
export function loadDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  const parsed = envSchema.shape.DATABASE_URL.safeParse(env.DATABASE_URL);
  if (!parsed.success) {
    const problem = parsed.error.issues.find((i) => i.code === "custom")?.message ?? "must be a postgres:// or postgresql:// URL";
    throw new ConfigError([`DATABASE_URL: ${env.DATABASE_URL ? problem : "required"}`]);
  }
  const mode = envSchema.shape.PGSSLMODE.safeParse(env.PGSSLMODE?.trim() || undefined);
  if (!mode.success) throw new ConfigError([`PGSSLMODE: must be one of ${SSL_MODES.join(", ")}`]);
  return withSslMode(parsed.data, mode.data);
}
