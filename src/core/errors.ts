/**
 * Errors with stable, namespaced codes (the web app switches on `code`, never on `message`).
 * Messages never contain token strings: callers pass only ids and classifications.
 */
export const ERROR_CODES = {
  invalidUserUlid: "input.invalid_user_ulid",
  invalidInput: "input.invalid",
  notFound: "token.not_found",
  exists: "token.exists",
  decryptFailed: "token.decrypt_failed",
  reconnectRequired: "token.reconnect_required",
  rateLimited: "calcom.rate_limited",
  transient: "calcom.transient",
  timeout: "calcom.timeout",
  malformed: "calcom.malformed_response",
  calcomConfig: "calcom.config_error",
  storeUnavailable: "store.unavailable",
  leaseTimeout: "refresh.lease_timeout",
  waitTimeout: "refresh.wait_timeout",
  operationTimeout: "operation.timeout",
  budgetExhausted: "refresh.budget_exhausted",
  /** Not failures: notes on a successful refresh's audit row (the expiry was assumed / converted). */
  expiryAssumed: "calcom.expiry_assumed",
  expiryConverted: "calcom.expiry_converted",
  refreshInProgress: "token.refresh_in_progress",
  refreshFailed: "refresh.failed",
  queueUnavailable: "queue.unavailable",
  config: "config.invalid",
  /** The Cal.com client for this kind of user (Platform client or OAuth 2.0 app) is not configured. */
  clientNotConfigured: "config.client_not_configured",
  /** Cal.com refused an authorization code (completeCalConnection). */
  codeRejected: "connect.code_rejected",
  internal: "internal.error",
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
  }
}

/** A ciphertext that does not authenticate (tampered, wrong user, unknown key). Never garbage. */
export class TokenDecryptError extends AppError {
  constructor(message: string) {
    super(ERROR_CODES.decryptFailed, message, { retryable: false });
  }
}

/** Bad configuration: lists every problem at once. */
export class ConfigError extends AppError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(ERROR_CODES.config, `Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.problems = problems;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
