/**
 * One line of `cal-tokens import`: a JSON token record. Problems name fields and rules only; neither
 * the line nor any value in it (JSON.parse's own message quotes the input, so it is dropped).
 */
import { checkSaveInput, MAX_TOKEN_BYTES, type SaveInputProblem } from "../ondemand/save-input.js";
import type { SaveCalTokensInput } from "../ondemand/types.js";

export interface ImportOptions {
  /** Accept managed users without `calUserId` (they lose the force-refresh safety net). */
  allowMissingCalUserId?: boolean;
}

export type ImportLine =
  | { ok: true; input: SaveCalTokensInput; userUlid: string; missingCalUserId: boolean }
  | { ok: false; problem: string };

const FIELDS = new Set(["userUlid", "accessToken", "refreshToken", "accessTokenExpiresAt", "refreshTokenExpiresAt", "kind", "calUserId"]);
const INSTANT_FIELDS = ["accessTokenExpiresAt", "refreshTokenExpiresAt"] as const;
/** Two tokens at the cap, JSON-escaped, plus the other fields, fit easily. */
const MAX_LINE_CHARS = 5 * MAX_TOKEN_BYTES;

export function parseImportLine(text: string, opts: ImportOptions = {}): ImportLine {
  if (text.length > MAX_LINE_CHARS)
    return { ok: false, problem: `longer than ${MAX_LINE_CHARS / 1024} KiB (tokens are at most ${MAX_TOKEN_BYTES / 1024} KiB each)` };
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
  const problems: SaveInputProblem[] = [];
  // A misspelt optional field (say "calUserID") would otherwise be dropped without a word. Unknown
  // names are not quoted: a malformed line may carry a token where a name should be.
  const unknown = Object.keys(record).filter((k) => !FIELDS.has(k)).length;
  if (unknown > 0) problems.push({ field: "record", message: `${unknown} unknown field(s); allowed: ${[...FIELDS].join(", ")}` });
  // JSON has no dates: epoch milliseconds stay numbers, ISO 8601 strings become Dates.
  for (const field of INSTANT_FIELDS) {
    const raw = record[field];
    if (typeof raw !== "string") continue;
    const parsed = parseInstantText(raw.trim());
    if (typeof parsed === "string") problems.push({ field, message: parsed });
    else record[field] = parsed;
  }
  if (record.calUserId === null) delete record.calUserId; // "unknown", like absent
  const missingCalUserId = (record.kind ?? "managed") === "managed" && record.calUserId === undefined;
  if (missingCalUserId && opts.allowMissingCalUserId !== true) {
    problems.push({
      field: "calUserId",
      message:
        "required for a managed user (without it a lost refresh token cannot be force-refreshed); --allow-missing-cal-user-id imports it anyway",
    });
  }
  const checked = checkSaveInput(record);
  // A date refused above shows up again as "must be a valid Date"; keep the clearer first message.
  const rest = checked.ok ? [] : checked.problems.filter((p) => !problems.some((q) => q.field === p.field));
  const all = [...problems, ...rest];
  if (!checked.ok || all.length > 0) return { ok: false, problem: all.map((p) => `${p.field}: ${p.message}`).join("; ") };
  const v = checked.value;
  const input: SaveCalTokensInput = {
    userUlid: v.userUlid,
    accessToken: v.pair.accessToken,
    refreshToken: v.pair.refreshToken,
    accessTokenExpiresAt: v.pair.accessTokenExpiresAt,
    refreshTokenExpiresAt: v.pair.refreshTokenExpiresAt,
    kind: v.kind,
    ...(v.calUserId !== null ? { calUserId: v.calUserId } : {}),
  };
  return { ok: true, input, userUlid: v.userUlid, missingCalUserId: v.missingCalUserId };
}

// Date and time are required, and an offset: without one, JavaScript reads the time in the host's
// time zone (and a bare date as UTC midnight), so the same file would mean different instants.
const ISO_INSTANT =
  /^(?<y>\d{4})-(?<mo>\d{2})-(?<d>\d{2})[Tt ](?<h>\d{2}):(?<mi>\d{2})(?::(?<s>\d{2})(?:\.(?<frac>\d{1,9}))?)?(?:[Zz]|(?<sign>[+-])(?<oh>\d{2}):?(?<om>\d{2}))$/;
const ISO_WITHOUT_OFFSET = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/;

/** Epoch milliseconds (digits) or an ISO 8601 instant with an offset; otherwise the rule it breaks. */
function parseInstantText(text: string): number | Date | string {
  if (/^\d+$/.test(text)) return Number(text);
  const groups = ISO_INSTANT.exec(text)?.groups;
  if (groups === undefined) {
    return ISO_WITHOUT_OFFSET.test(text)
      ? "an ISO 8601 date needs a time and an offset (Z or ±hh:mm), e.g. 2026-11-28T10:00:00Z"
      : "must be epoch milliseconds or an ISO 8601 date with an offset";
  }
  const n = (name: string) => Number(groups[name] ?? 0);
  const [y, mo, d, h, mi, s, oh, om] = ["y", "mo", "d", "h", "mi", "s", "oh", "om"].map(n) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const day = new Date(Date.UTC(y, mo - 1, d));
  const calendarOk = day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d;
  if (!calendarOk || h > 23 || mi > 59 || s > 59 || oh > 23 || om > 59) {
    return "must be epoch milliseconds or an ISO 8601 date with an offset (this date or time does not exist)";
  }
  const ms = Math.floor(Number(`0.${groups.frac ?? "0"}`) * 1000);
  const offsetMs = (groups.sign === "-" ? -1 : 1) * (oh * 60 + om) * 60_000;
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms) - offsetMs);
}
