/**
 * Field rules shared by the environment schema: bounded integers, durations a Node timer can hold,
 * the Cal.com API origin and the encryption keys. Messages name the rule, never the value (except a
 * URL path, which the operator needs to see and which carries no secret).
 */
import { z } from "zod";

/** Node timers (setTimeout, BullMQ delays) overflow past this and fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A whole number in [min, max]; anything else ("ten", "-5", "1.5", "1e3") gets one message. */
export function int(min: number, max: number, unit = "") {
  const rule = `must be a whole number${unit} from ${min} to ${max}`;
  return z.string({ error: rule }).trim().regex(/^\d+$/, rule).transform(Number).pipe(z.number().min(min, rule).max(max, rule));
}

/** A duration in seconds; its maximum must fit a timer, so a new setting cannot reintroduce the overflow. */
export function seconds(min: number, max: number) {
  assertTimerBound(max * 1000);
  return int(min, max, " of seconds");
}

/** A duration in milliseconds, bounded like `seconds`. */
export function millis(min: number, max: number) {
  assertTimerBound(max);
  return int(min, max, " of milliseconds");
}

/**
 * A span in seconds that only ever enters date arithmetic (compared with, or added to, a stored time;
 * at most a BullMQ delay, which Redis keeps as a timestamp), never a Node timer: bounded as a count,
 * so it may exceed the 24.8 days a timer holds.
 */
export function spanSeconds(min: number, max: number) {
  return int(min, max, " of seconds");
}

function assertTimerBound(maxMs: number): void {
  if (maxMs > MAX_TIMER_MS) throw new Error(`config schema: a duration bound of ${maxMs} ms exceeds a Node timer's ${MAX_TIMER_MS} ms`);
}

/**
 * A Cal.com client id. It goes into a URL path and a header, so visible ASCII without spaces; Cal.com's
 * ids are a few dozen characters.
 */
export const clientId = z
  .string()
  .trim()
  .regex(/^[\x21-\x7e]{1,256}$/, "must be 1 to 256 visible ASCII characters without spaces");

/** A Cal.com client secret: it goes into a header or a form field. The message never quotes it. */
export const clientSecret = z
  .string()
  .trim()
  .regex(/^[\x21-\x7e]{1,4096}$/, "must be 1 to 4096 visible ASCII characters without spaces");

/** A switch: true/false, 1/0, yes/no or on/off (any case). */
const TRUE_WORDS = ["true", "1", "yes", "on"];
const FALSE_WORDS = ["false", "0", "no", "off"];
export const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => TRUE_WORDS.includes(v) || FALSE_WORDS.includes(v), "must be true or false (or 1/0, yes/no, on/off)")
  .transform((v) => TRUE_WORDS.includes(v));

/**
 * The hash tag Redis Cluster hashes a key by, as Redis finds it: the text between the first "{" and
 * the first "}" after it, if that is not empty; null when there is none (the whole key is hashed).
 * Every key under a prefix that has one lands in the same slot, whatever follows the prefix.
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf("{");
  if (open < 0) return null;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

export const url = (protocols: RegExp) =>
  z
    .string()
    .trim()
    .min(1)
    .pipe(z.url({ protocol: protocols }));

export interface ApiOrigin {
  origin: string;
  /** Set when the value was normalised, for the composition root to log once. */
  note: string | null;
}

/**
 * `CAL_API_URL`: the API origin. Cal.com's docs write the base as `https://api.cal.com/v2` while the
 * client appends `/v2/...` itself; a doubled `/v2/v2/...` gets a route-level 404 that must never be
 * read as a dead grant (docs/calcom-api.md), so a trailing `/v2` is dropped and any other path refused.
 */
export const apiOrigin = url(/^https?$/).transform((raw, ctx): ApiOrigin => {
  const u = new URL(raw);
  const path = u.pathname.replace(/\/+$/, "");
  const pathOk = path === "" || path === "/v2";
  const found = [
    ...(pathOk ? [] : ["a path"]),
    ...(u.search ? ["a query string"] : []),
    ...(u.hash ? ["a fragment"] : []),
    ...(u.username || u.password ? ["credentials"] : []),
  ];
  if (found.length > 0) {
    const got = pathOk ? "" : `; got path ${JSON.stringify(u.pathname)}`;
    ctx.addIssue({ code: "custom", message: `must be the API origin (e.g. https://api.cal.com), without ${orList(found)}${got}` });
    return z.NEVER;
  }
  const note =
    path === "/v2"
      ? `CAL_API_URL: the trailing "/v2" was dropped (calls add /v2/... themselves); set it to ${u.origin} to silence this note`
      : null;
  return { origin: u.origin, note };
});

const orList = (items: string[]) => (items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`);

/** 32 bytes in canonical standard base64: 43 characters whose last carries 4 zero bits, then one "=". */
const STRICT_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Why a key is not 32 bytes of strict standard base64, or null when it is. Never quotes the key. */
function keyProblem(b64: string): string | null {
  if (STRICT_KEY.test(b64)) return null;
  const rule = "key must be exactly 32 bytes of standard base64 (44 characters of A-Z a-z 0-9 + / ending in one =)";
  if (/\s/.test(b64)) return `${rule}; it contains whitespace`;
  if (/[-_]/.test(b64)) return `${rule}; base64url (- or _) is not accepted`;
  if (/[^A-Za-z0-9+/=]/.test(b64)) return `${rule}; it contains other characters`;
  if (/=[^=]/.test(b64)) return `${rule}; = may only end it`;
  if (b64.length === 43 && !b64.includes("=")) return `${rule}; the = padding is missing`;
  const bytes = Buffer.from(b64, "base64").length;
  if (bytes !== 32 || b64.length !== 44) return `${rule}; it decodes to ${bytes} bytes`;
  return `${rule}; the last character is not canonical`;
}

/**
 * `TOKEN_ENCRYPTION_KEYS`: comma-separated `keyId:base64key` entries, each key exactly 32 bytes.
 * The first entry encrypts; every entry decrypts, so a new key can be prepended without downtime.
 * Node's base64 decoder skips junk and accepts base64url, so the text is checked before decoding.
 */
export const encryptionKeys = z
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
      const problem = keyProblem(b64);
      if (problem !== null) {
        ctx.addIssue({ code: "custom", message: `entry ${i + 1} (${id}): ${problem}` });
        continue;
      }
      if (keys.some((k) => k.id === id)) {
        ctx.addIssue({ code: "custom", message: `entry ${i + 1}: duplicate key id ${id}` });
        continue;
      }
      keys.push({ id, key: Buffer.from(b64, "base64") });
    }
    return keys;
  });

/** A bearer token as RFC 6750 writes it (b64token), long enough not to be guessed. */
export const bearerToken = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9\-._~+/]{16,}=*$/, "must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (optionally ending in =)");
