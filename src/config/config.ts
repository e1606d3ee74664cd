import type { z } from "zod";
import { ConfigError } from "../core/errors.js";
import { crossFieldProblems, envSchema } from "./schema.js";

/** Typed configuration. Built once per process by its composition root and passed down. */
export interface Config {
  databaseUrl: string;
  redisUrl: string;
  calcom: {
    apiUrl: string;
    clientId: string;
    clientSecret: string;
    /** OAuth 2.0 app credentials for oauth2 users (the platform client's when not set). */
    oauth2: { clientId: string; clientSecret: string };
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
    /** Base lease held outside Cal.com calls, renewed before each call to cover its timeout. */
    leaseMs: number;
    ratePerMinute: number;
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
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    calcom: {
      apiUrl: e.CAL_API_URL.origin,
      clientId: e.CAL_CLIENT_ID,
      clientSecret: e.CAL_CLIENT_SECRET,
      oauth2: {
        clientId: e.CAL_OAUTH_CLIENT_ID ?? e.CAL_CLIENT_ID,
        clientSecret: e.CAL_OAUTH_CLIENT_SECRET ?? e.CAL_CLIENT_SECRET,
      },
      timeoutMs: e.CAL_HTTP_TIMEOUT_MS,
    },
    encryptionKeys: e.TOKEN_ENCRYPTION_KEYS,
    refresh: {
      leadMs: e.REFRESH_LEAD_SECONDS * 1000,
      jitterMs: e.REFRESH_JITTER_SECONDS * 1000,
      onDemandBufferMs: e.ON_DEMAND_BUFFER_SECONDS * 1000,
      onDemandWaitMs: e.ON_DEMAND_WAIT_MS,
      minIntervalMs: e.MIN_REFRESH_INTERVAL_SECONDS * 1000,
      leaseMs: e.REFRESH_LEASE_SECONDS * 1000,
      ratePerMinute: e.CAL_REFRESH_RATE_PER_MINUTE,
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

function describeIssue(issue: z.core.$ZodIssue): string {
  const name = issue.path.length > 0 ? issue.path.join(".") : "(environment)";
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) return `${name}: required`;
  return `${name}: ${issue.message}`;
}

/** For tools that need only the database (migrations): the same validation, without the rest. */
export function loadDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  const parsed = envSchema.shape.DATABASE_URL.safeParse(env.DATABASE_URL);
  if (!parsed.success)
    throw new ConfigError([`DATABASE_URL: ${env.DATABASE_URL ? "must be a postgres:// or postgresql:// URL" : "required"}`]);
  return parsed.data;
}
