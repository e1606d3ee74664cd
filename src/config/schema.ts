import { z } from "zod";

/** Positive integer from an env string; `z.coerce` would turn "" into 0, so empty counts as missing. */
const int = (min: number) => z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(min));

const url = (protocols: RegExp) =>
  z
    .string()
    .trim()
    .min(1)
    .pipe(z.url({ protocol: protocols }));

/**
 * `TOKEN_ENCRYPTION_KEYS`: comma-separated `keyId:base64key` entries, each key exactly 32 bytes.
 * The first entry encrypts; every entry decrypts, so a new key can be prepended without downtime.
 */
const encryptionKeys = z
  .string()
  .trim()
  .min(1)
  .transform((raw, ctx) => {
    const keys: { id: string; key: Buffer }[] = [];
    for (const [i, entry] of raw.split(",").entries()) {
      const sep = entry.indexOf(":");
      const id = entry.slice(0, sep).trim();
      const b64 = entry.slice(sep + 1).trim();
      if (sep <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
        ctx.addIssue({ code: "custom", message: `entry ${i + 1}: expected keyId:base64key (keyId 1-32 of A-Z a-z 0-9 _ -)` });
        continue;
      }
      const key = Buffer.from(b64, "base64");
      if (key.length !== 32) {
        ctx.addIssue({ code: "custom", message: `entry ${i + 1} (${id}): key must decode to 32 bytes, got ${key.length}` });
        continue;
      }
      if (keys.some((k) => k.id === id)) {
        ctx.addIssue({ code: "custom", message: `entry ${i + 1}: duplicate key id ${id}` });
        continue;
      }
      keys.push({ id, key });
    }
    return keys;
  });

export const envSchema = z.object({
  DATABASE_URL: url(/^postgres(ql)?$/),
  REDIS_URL: url(/^rediss?$/).default("redis://127.0.0.1:6379"),
  CAL_API_URL: url(/^https?$/).default("https://api.cal.com"),
  CAL_CLIENT_ID: z.string().trim().min(1),
  CAL_CLIENT_SECRET: z.string().trim().min(1),
  /** Cal.com OAuth 2.0 app (oauth2 users); defaults to the platform client above. */
  CAL_OAUTH_CLIENT_ID: z.string().trim().min(1).optional(),
  CAL_OAUTH_CLIENT_SECRET: z.string().trim().min(1).optional(),
  TOKEN_ENCRYPTION_KEYS: encryptionKeys,
  REFRESH_LEAD_SECONDS: int(0).default(600),
  REFRESH_JITTER_SECONDS: int(0).default(300),
  ON_DEMAND_BUFFER_SECONDS: int(0).default(120),
  SWEEP_INTERVAL_SECONDS: int(1).default(60),
  WORKER_CONCURRENCY: int(1).default(10),
  CAL_REFRESH_RATE_PER_MINUTE: int(1).default(450),
  CAL_HTTP_TIMEOUT_MS: int(100).default(10_000),
  REFRESH_LEASE_SECONDS: int(1).default(60),
  AUDIT_RETENTION_DAYS: int(1).default(30),
  EVENTS_WEBHOOK_URL: url(/^https?$/).optional(),
  EVENTS_WEBHOOK_SECRET: z.string().min(16).optional(),
  BULL_BOARD_USERNAME: z.string().min(1).optional(),
  BULL_BOARD_PASSWORD: z.string().min(8).optional(),
  PORT: int(0).default(3000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  QUEUE_PREFIX: z.string().trim().min(1).default("caltok"),
});

/**
 * Rules that span several variables. Checked on the raw strings so they are reported together with
 * per-variable problems (zod skips object refinements when any field failed).
 */
export function crossFieldProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const num = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    return Number.isFinite(n) ? n : null;
  };
  const lease = num("REFRESH_LEASE_SECONDS", 60);
  const timeout = num("CAL_HTTP_TIMEOUT_MS", 10_000);
  // The lease must outlive the refresh call, or a second process could refresh with the same token.
  if (lease !== null && timeout !== null && lease * 1000 < 2 * timeout + 5_000) {
    problems.push(
      "REFRESH_LEASE_SECONDS: must be at least 2 × CAL_HTTP_TIMEOUT_MS + 5 s (a refresh may call refresh and then force-refresh)",
    );
  }
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
