/**
 * What Bull Board may show of a job (docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 * The board renders job data, return values and scheduler templates verbatim unless told otherwise,
 * so every queue gets an allow-list: only the named keys, only primitive values, only short strings.
 * Even if some code put a token into a job, the board shows the user ULID and nothing else.
 */

/** Allowed keys of `job.data` per queue. Extend deliberately: each key is a promise that it holds no secret. */
export const BOARD_DATA_KEYS = {
  refresh: ["userUlid"],
  sweep: [],
  events: ["eventId"],
} as const;

/** Allowed keys of a job's return value (outcome summaries, counts, codes). */
export const BOARD_RETURN_VALUE_KEYS = [
  "ok",
  "how",
  "outcome",
  "status",
  "code",
  "errorCode",
  "retryable",
  "version",
  "durationMs",
  "scanned",
  "enqueued",
  "pages",
  "delivered",
  "statusCode",
  "attempts",
] as const;

/** Longer strings are dropped: ULIDs are 26 characters, codes are short, tokens are long. */
const MAX_STRING_LENGTH = 64;

type Shown = Record<string, string | number | boolean | null>;

/** Keeps only allowed keys whose values are primitives (short strings, finite numbers, booleans, null). */
export function pickShown(value: unknown, keys: readonly string[]): Shown {
  const out: Shown = {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) return out;
  const record = value as Record<string, unknown>;
  for (const key of keys) {
    if (!Object.hasOwn(record, key)) continue;
    const v = record[key];
    if (v === null || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) out[key] = v;
    else if (typeof v === "string" && v.length <= MAX_STRING_LENGTH) out[key] = v;
  }
  return out;
}

/** Progress is shown only as a number (BullMQ allows any JSON there). */
export function shownProgress(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
