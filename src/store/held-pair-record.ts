/**
 * The held-pair record as stored in Redis: ONE token-cipher envelope (field `held_pair`, bound to the
 * upper-case user ULID and the key id) whose plaintext is the whole record. Nothing outside the
 * ciphertext is read, so a record copied from another user, an envelope taken from a token row
 * (field `access_token` / `refresh_token`, or v1), or any edited byte does not authenticate
 * (docs/architecture.md#invariant-2-persist-first, docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 *
 * Plaintext (JSON, times in epoch ms):
 *   { "t": "held_pair", "v": 2, "u": <ULID>, "ev": <expectedVersion>, "hs": <heldSince>,
 *     "nra": <nextRefreshAt>, "trg": <trigger>, "at": <access token>, "ate": <access expiry>,
 *     "rt": <refresh token>, "rte": <refresh expiry | null> }
 *
 * An authentic record is still checked for sense (a bug elsewhere must not park a user until 2099):
 * see RANGES. Replay of an older authentic record is harmless because the flush is a compare-and-swap
 * on `ev`: once the row moved on, the old record can only be dropped.
 */
import type { HeldPair } from "../core/ports.js";
import { isUlid, normalizeUlid } from "../core/ulid.js";
import type { TokenCipher } from "./token-cipher.js";

const DAY_MS = 24 * 3600_000;
/** The same cap as saveCalTokens' input (src/ondemand/save-input.ts); the store layer cannot import it. */
const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_VERSION = 2 ** 31 - 1; // cal_token.version is an INTEGER
const TRIGGER_RE = /^[a-z_]{1,32}$/;

/** Plausible ranges, relative to `now` (heldSince) or to heldSince (the rest). Generous on purpose. */
const RANGES = {
  /** Records live a week in Redis; allow a day of slack, and some clock skew between processes. */
  heldSinceAgeMs: 8 * DAY_MS,
  heldSinceAheadMs: DAY_MS,
  /** An access expiry is normalised to at most a day after the refresh; allow two. */
  accessAheadMs: 2 * DAY_MS,
  /**
   * The refresh policy plans far ahead for idle users (src/core/grant-policy.ts): an idle OAuth2
   * grant's keep-alive weeks out, an idle managed user parked up to PARK_SECONDS (at most 365 days).
   * A pair held after such a refresh must stay writable: refusing it would quarantine the only copy.
   */
  nextRefreshAheadMs: 400 * DAY_MS,
  /** Refresh tokens are issued for a year; five is still plausible, 2099 is not. */
  refreshAheadMs: 5 * 365 * DAY_MS,
  behindMs: DAY_MS,
} as const;

interface Plain {
  t: "held_pair";
  v: 2;
  u: string;
  ev: number;
  hs: number;
  nra: number;
  trg: string;
  at: string;
  ate: number;
  rt: string;
  rte: number | null;
}

export function encodeHeldPair(cipher: TokenCipher, held: HeldPair): string {
  const u = normalizeUlid(held.userUlid);
  const plain: Plain = {
    t: "held_pair",
    v: 2,
    u,
    ev: held.expectedVersion,
    hs: held.heldSince.getTime(),
    nra: held.nextRefreshAt.getTime(),
    trg: held.trigger,
    at: held.pair.accessToken,
    ate: held.pair.accessTokenExpiresAt.getTime(),
    rt: held.pair.refreshToken,
    rte: held.pair.refreshTokenExpiresAt?.getTime() ?? null,
  };
  return cipher.encrypt(JSON.stringify(plain), u, "held_pair");
}

export type Decoded = { ok: true; held: HeldPair } | { ok: false; reason: string };

/**
 * Authenticates and checks one record. `reason` names what was wrong (never a value from the record
 * and never a secret), for the quarantine log line.
 */
export function decodeHeldPair(cipher: TokenCipher, userUlid: string, raw: string, now: Date): Decoded {
  const u = normalizeUlid(userUlid);
  let text: string;
  try {
    text = cipher.decrypt(raw, u, "held_pair");
  } catch (err) {
    // TokenDecryptError messages carry a reason and a key id only.
    return { ok: false, reason: err instanceof Error ? err.message : "decrypt failed" };
  }
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch {
    return { ok: false, reason: "authentic but not JSON" };
  }
  const problem = checkPlain(p, u, now.getTime());
  if (problem !== null) return { ok: false, reason: `authentic but implausible: ${problem}` };
  const s = p as Plain;
  return {
    ok: true,
    held: {
      userUlid: u,
      expectedVersion: s.ev,
      heldSince: new Date(s.hs),
      nextRefreshAt: new Date(s.nra),
      trigger: s.trg,
      pair: {
        accessToken: s.at,
        refreshToken: s.rt,
        accessTokenExpiresAt: new Date(s.ate),
        refreshTokenExpiresAt: s.rte === null ? null : new Date(s.rte),
      },
      raw,
    },
  };
}

const isTime = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) > 0;
const isToken = (x: unknown): x is string => typeof x === "string" && x.length > 0 && x.length <= MAX_TOKEN_CHARS;
const within = (x: number, from: number, to: number) => x >= from && x <= to;

/** The first problem found (a field name and what is wrong with it), or null. */
function checkPlain(p: unknown, u: string, now: number): string | null {
  if (typeof p !== "object" || p === null || Array.isArray(p)) return "not an object";
  const s = p as Record<string, unknown>;
  if (s.t !== "held_pair" || s.v !== 2) return "record type or version";
  if (s.u !== u || !isUlid(s.u)) return "user";
  if (!Number.isSafeInteger(s.ev) || (s.ev as number) < 1 || (s.ev as number) > MAX_VERSION) return "expectedVersion";
  if (!isTime(s.hs) || !within(s.hs, now - RANGES.heldSinceAgeMs, now + RANGES.heldSinceAheadMs)) return "heldSince";
  const hs = s.hs;
  if (!isTime(s.ate) || !within(s.ate, hs - RANGES.behindMs, hs + RANGES.accessAheadMs)) return "accessTokenExpiresAt";
  if (!isTime(s.nra) || !within(s.nra, hs - RANGES.behindMs, hs + RANGES.nextRefreshAheadMs)) return "nextRefreshAt";
  if (s.rte !== null && (!isTime(s.rte) || !within(s.rte, hs - RANGES.behindMs, hs + RANGES.refreshAheadMs)))
    return "refreshTokenExpiresAt";
  if (typeof s.trg !== "string" || !TRIGGER_RE.test(s.trg)) return "trigger";
  if (!isToken(s.at) || !isToken(s.rt)) return "tokens";
  return null;
}
