/** commander argument parsers: a bad value is a usage error (exit 2) before anything connects. */
import { InvalidArgumentError } from "commander";
import type { CalTokenStatus } from "../core/types.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";

export function ulidArg(value: string): string {
  if (!isUlid(value)) throw new InvalidArgumentError("must be a 26-character ULID.");
  return normalizeUlid(value);
}

export function positiveIntArg(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new InvalidArgumentError(`must be an integer from 1 to ${max}.`);
    }
    return n;
  };
}

export const STATUSES = ["ACTIVE", "RECONNECT_REQUIRED"] as const satisfies readonly CalTokenStatus[];

export function statusArg(value: string): CalTokenStatus {
  const upper = value.toUpperCase();
  const found = STATUSES.find((s) => s === upper);
  if (!found) throw new InvalidArgumentError(`must be one of ${STATUSES.join(", ")}.`);
  return found;
}
