import { AppError, ERROR_CODES } from "./errors.js";

/**
 * A bounded wait ran out. A value, not a message: callers test `instanceof TimeoutError` (or its
 * code) and never match error text. `what` names the operation for logs ("recovery store get").
 */
export class TimeoutError extends AppError {
  readonly what: string;
  readonly afterMs: number;
  constructor(what: string, afterMs: number) {
    super(ERROR_CODES.operationTimeout, `${what} timed out after ${afterMs} ms`, { retryable: true });
    this.what = what;
    this.afterMs = afterMs;
  }
}

/**
 * Rejects with a TimeoutError if `promise` has not settled within `ms`; the timer is cleared either
 * way (and never keeps the process alive). The promise itself is not cancelled.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
