import { z } from "zod";
import { apiOrigin, bearerToken, encryptionKeys, int, millis, seconds, url } from "./fields.js";

/**
 * Every number has both bounds: a typo must not pass as a setting (PORT=70000), and no duration may
 * exceed what a Node timer holds (`seconds`/`millis` enforce it on the bounds themselves).
 */
export const envSchema = z.object({
  DATABASE_URL: url(/^postgres(ql)?$/),
  REDIS_URL: url(/^rediss?$/).default("redis://127.0.0.1:6379"),
  CAL_API_URL: apiOrigin.default({ origin: "https://api.cal.com", note: null }),
  CAL_CLIENT_ID: z.string().trim().min(1),
  CAL_CLIENT_SECRET: z.string().trim().min(1),
  /** Cal.com OAuth 2.0 app (oauth2 users); defaults to the platform client above. */
  CAL_OAUTH_CLIENT_ID: z.string().trim().min(1).optional(),
  CAL_OAUTH_CLIENT_SECRET: z.string().trim().min(1).optional(),
  TOKEN_ENCRYPTION_KEYS: encryptionKeys,
  REFRESH_LEAD_SECONDS: seconds(0, 86_400).default(600),
  REFRESH_JITTER_SECONDS: seconds(0, 86_400).default(300),
  ON_DEMAND_BUFFER_SECONDS: seconds(0, 3_600).default(120),
  /** How long a request path waits for an expired token's refresh before a retryable result. */
  ON_DEMAND_WAIT_MS: millis(100, 30_000).default(2_000),
  /** Minimum time between two refreshes of one user (stops refresh loops). */
  MIN_REFRESH_INTERVAL_SECONDS: seconds(0, 3_600).default(30),
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
  QUEUE_PREFIX: z.string().trim().min(1).default("caltok"),
});

/**
 * Rules that span several variables. Checked on the raw strings so they are reported together with
 * per-variable problems (zod skips object refinements when any field failed).
 */
export function crossFieldProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (Boolean(env.CAL_OAUTH_CLIENT_ID) !== Boolean(env.CAL_OAUTH_CLIENT_SECRET)) {
    problems.push("CAL_OAUTH_CLIENT_SECRET: set both CAL_OAUTH_CLIENT_ID and CAL_OAUTH_CLIENT_SECRET, or neither");
  }
  if (env.EVENTS_WEBHOOK_URL && !env.EVENTS_WEBHOOK_SECRET) {
    problems.push("EVENTS_WEBHOOK_SECRET: required when EVENTS_WEBHOOK_URL is set");
  }
  if (Boolean(env.BULL_BOARD_USERNAME) !== Boolean(env.BULL_BOARD_PASSWORD)) {
    problems.push("BULL_BOARD_PASSWORD: set both BULL_BOARD_USERNAME and BULL_BOARD_PASSWORD, or neither");
  }
  return problems;
}

export type Env = z.output<typeof envSchema>;
