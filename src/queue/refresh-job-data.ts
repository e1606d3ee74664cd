/**
 * What a refresh job may be: named `refresh`, not repeatable, data exactly `{ userUlid }` with the
 * ULID in its canonical upper-case form (docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 * Anything else was not written by our producers (Bull Board could once add jobs with any data; anyone
 * who can write Redis still can), so the worker refuses it before touching the database or Cal.com.
 * Problems name what is wrong, never a value: a wrong job may carry a token anywhere.
 */
import { isUlid, normalizeUlid } from "../core/ulid.js";
import { JOB_NAMES } from "./names.js";

export type RefreshJobCheck = { ok: true; userUlid: string } | { ok: false; problem: string };

/** The parts of a BullMQ job the check reads. */
export interface RefreshJobLike {
  name: string;
  data: unknown;
  repeatJobKey?: string | undefined;
}

export const REFRESH_JOB_SHAPE = `a "${JOB_NAMES.refresh}" job with data exactly { userUlid: <upper-case ULID> }`;

export function checkRefreshJob(job: RefreshJobLike): RefreshJobCheck {
  if (job.name !== JOB_NAMES.refresh) return { ok: false, problem: "unexpected job name" };
  if (job.repeatJobKey) return { ok: false, problem: "refresh jobs are never repeatable" };
  const data = job.data;
  if (data === null || typeof data !== "object" || Array.isArray(data)) return { ok: false, problem: "job data is not an object" };
  const extra = Object.keys(data).filter((k) => k !== "userUlid").length;
  if (extra > 0) return { ok: false, problem: `job data has ${extra} key(s) besides userUlid` };
  const { userUlid } = data as { userUlid?: unknown };
  if (!isUlid(userUlid)) return { ok: false, problem: "userUlid is missing or not a ULID" };
  if (userUlid !== normalizeUlid(userUlid)) return { ok: false, problem: "userUlid is not in canonical upper-case form" };
  return { ok: true, userUlid };
}
