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

/**
 * What each queue's return value may show, key by key. A leaf says which values pass: `word` is a
 * short lower-case word (the refresh job's `result`), `count` a finite number, `flag` a boolean. A
 * nested object passes only its listed numeric leaves. What the jobs return: the refresh job
 * `{ result, version? }` (jobs/refresh-token.ts), the sweep `{ visited, pages, complete, durationMs,
 * pruned?: { audit, events } }` (jobs/sweep.ts); the delivery job returns nothing.
 */
export const BOARD_RETURN_VALUES = {
  refresh: { result: "word", version: "count" },
  sweep: { visited: "count", pages: "count", complete: "flag", durationMs: "count", pruned: { audit: "count", events: "count" } },
  events: {},
} as const satisfies Record<keyof typeof BOARD_DATA_KEYS, ReturnValueShape>;

type Leaf = "word" | "count" | "flag";
export type ReturnValueShape = { readonly [key: string]: Leaf | { readonly [key: string]: "count" } };
type ShownValue = string | number | boolean | { [key: string]: number };

/** A return value as the board shows it: only the shape's keys, each only if its value fits. */
export function shownReturnValue(value: unknown, shape: ReturnValueShape): Record<string, ShownValue> {
  const out: Record<string, ShownValue> = {};
  if (!isPlainRecord(value)) return out;
  for (const [key, rule] of Object.entries(shape)) {
    if (!Object.hasOwn(value, key)) continue;
    const v = value[key];
    if (typeof rule === "object") {
      if (!isPlainRecord(v)) continue;
      const nested: Record<string, number> = {};
      for (const inner of Object.keys(rule)) {
        const n = v[inner];
        if (Object.hasOwn(v, inner) && typeof n === "number" && Number.isFinite(n)) nested[inner] = n;
      }
      out[key] = nested;
    } else if (fits(rule, v)) {
      out[key] = v;
    }
  }
  return out;
}

function fits(rule: Leaf, v: unknown): v is string | number | boolean {
  if (rule === "word") return typeof v === "string" && /^[a-z][a-z_]{0,31}$/.test(v);
  if (rule === "count") return typeof v === "number" && Number.isFinite(v);
  return typeof v === "boolean";
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

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
