/**
 * One line of `cal-tokens import`: a JSON token record. Problems name fields and rules only; neither
 * the line nor any value in it (JSON.parse's own message quotes the input, so it is dropped).
 */
import { isAppError } from "../core/errors.js";
import { parseSaveInput } from "../ondemand/save-input.js";
import type { SaveCalTokensInput } from "../ondemand/types.js";

export type ImportLine = { ok: true; input: SaveCalTokensInput; userUlid: string } | { ok: false; problem: string };

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/;
const INSTANT_FIELDS = ["accessTokenExpiresAt", "refreshTokenExpiresAt"] as const;

export function parseImportLine(text: string): ImportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: "not valid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, problem: "must be a JSON object" };
  }
  const record: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const problems: string[] = [];
  // JSON has no dates: epoch milliseconds stay numbers, ISO 8601 strings become Dates.
  for (const field of INSTANT_FIELDS) {
    const raw = record[field];
    if (typeof raw !== "string") continue;
    const trimmed = raw.trim();
    const date = /^\d+$/.test(trimmed) ? Number(trimmed) : ISO_DATE.test(trimmed) ? new Date(trimmed) : null;
    if (date === null || (date instanceof Date && Number.isNaN(date.getTime()))) {
      problems.push(`${field}: must be epoch milliseconds or an ISO 8601 date`);
      continue;
    }
    record[field] = date;
  }
  const input = record as unknown as SaveCalTokensInput;
  try {
    const parsed = parseSaveInput(input);
    if (problems.length > 0) return { ok: false, problem: problems.join("; ") };
    return { ok: true, input, userUlid: parsed.userUlid };
  } catch (err) {
    if (!isAppError(err)) throw err;
    const detail = err.message.replace(/^saveCalTokens: invalid input: /, "");
    // A date we already rejected shows up again as "must be a valid Date"; keep our clearer message.
    const rest = detail.split("; ").filter((p) => !problems.some((q) => p.startsWith(`${q.split(":")[0] ?? q}:`)));
    return { ok: false, problem: [...problems, ...rest].join("; ") };
  }
}
