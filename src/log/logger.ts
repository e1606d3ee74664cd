import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

export type { Logger } from "pino";

/** The prefixes the web app already greps for. */
export const LOG_PREFIX = {
  onDemand: "[CAL_TOKEN_UTIL]",
  tokenService: "[TOKEN_SERVICE]",
  refreshRequests: "[CAL_TOKENS_REFRESH]",
} as const;
export type LogComponent = keyof typeof LOG_PREFIX;

const SECRET_KEYS = [
  "accessToken",
  "refreshToken",
  "access_token",
  "refresh_token",
  "clientSecret",
  "client_secret",
  "secret",
  "password",
  "authorization",
  "Authorization",
  '"x-cal-secret-key"',
  "accessTokenEnc",
  "refreshTokenEnc",
  "encryptionKeys",
];

/**
 * Redaction paths: each secret key at the top level and up to two levels deep, plus request/response
 * headers. pino's redaction needs explicit paths (wildcards cover one level each).
 */
export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-cal-secret-key"]',
  "headers.authorization",
  'headers["x-cal-secret-key"]',
];

export interface CreateLoggerOptions {
  level?: LoggerOptions["level"];
  /** Where JSON lines go; defaults to stdout. Tests pass a sink. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/** Builds the root logger. JSON always (pretty printing is a dev-side pipe, e.g. `| pino-pretty`). */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    base: opts.base ?? { service: "cal-token-worker" },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: safeErrorSerializer },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A child logger whose every message starts with the component's prefix. */
export function componentLogger(root: Logger, component: LogComponent): Logger {
  return root.child({ component }, { msgPrefix: `${LOG_PREFIX[component]} ` });
}

/**
 * Errors are logged as {type, message, code, stack} only. pino's default serializer copies every
 * enumerable property, and HTTP client errors carry request options (bodies with refresh tokens).
 */
function safeErrorSerializer(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (err.stack) out.stack = err.stack;
  return out;
}
