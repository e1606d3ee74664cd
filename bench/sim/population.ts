/**
 * The population and its activity, derived from the seed alone, so every strategy sees the same users,
 * the same sessions and the same request paths.
 *
 * - Each user has a token kind, an activity segment and a region (time zone), drawn once.
 * - Each (user, local day) decides from its own seed whether the user is active that day, how many
 *   sessions they have and when each starts (the local-hour curve, weekends lower).
 * - Each session draws its length from its own seed; its request paths are a Poisson stream (mean gap
 *   `requestGapMs`), the first one at the session start, drawn from a per-user mulberry32 state.
 */
import { DAY, HOUR, type SimParams } from "./params.js";
import { mix, poisson, standardNormal, stream, uniform } from "./rng.js";

export const KIND_OAUTH2 = 0;
export const KIND_MANAGED = 1;

export interface Population {
  n: number;
  kind: Uint8Array;
  segment: Uint8Array;
  /** UTC offset in hours. */
  offset: Int8Array;
  /** Initial state at virtual time 0 (strategy-independent). */
  lastSeen0: Float64Array;
  lastRefresh0: Float64Array;
  /** Indices of the OAuth2 users (for the hourly refresh-token scan). */
  oauth2: Int32Array;
}

function pick<T extends { share: number }>(items: readonly T[], r: number): number {
  let acc = 0;
  for (let i = 0; i < items.length; i++) {
    acc += (items[i] as T).share;
    if (r < acc) return i;
  }
  return items.length - 1;
}

export function buildPopulation(p: SimParams): Population {
  const n = p.users;
  const kind = new Uint8Array(n);
  const segment = new Uint8Array(n);
  const offset = new Int8Array(n);
  const lastSeen0 = new Float64Array(n);
  const lastRefresh0 = new Float64Array(n);
  let oauthCount = 0;
  for (let u = 0; u < n; u++) {
    const r = stream(mix(p.seed, u, 0x7fff_0000, 1));
    kind[u] = r() < p.kinds.oauth2.share ? KIND_OAUTH2 : KIND_MANAGED;
    const s = pick(p.segments, r());
    segment[u] = s;
    offset[u] = (p.regions[pick(p.regions, r())] as SimParams["regions"][number]).utcOffsetHours;
    const seg = p.segments[s] as SimParams["segments"][number];
    lastSeen0[u] = -Math.round(uniform(r, seg.lastSeenAgoMs[0], seg.lastSeenAgoMs[1]));
    lastRefresh0[u] = -Math.round(uniform(r, seg.lastRefreshAgoMs[0], seg.lastRefreshAgoMs[1]));
    if (kind[u] === KIND_OAUTH2) oauthCount++;
  }
  const oauth2 = new Int32Array(oauthCount);
  for (let u = 0, j = 0; u < n; u++) if (kind[u] === KIND_OAUTH2) oauth2[j++] = u;
  return { n, kind, segment, offset, lastSeen0, lastRefresh0, oauth2 };
}

/** Cumulative distribution of the local start hour. */
export function hourCdf(p: SimParams): Float64Array {
  const w = p.localHourWeights;
  const total = w.reduce((a, b) => a + b, 0);
  const cdf = new Float64Array(24);
  let acc = 0;
  for (let h = 0; h < 24; h++) {
    acc += (w[h] ?? 0) / total;
    cdf[h] = acc;
  }
  return cdf;
}

/**
 * Sessions of user `u` on local day `localDay` (day 0 starts at virtual time 0 in UTC+0), as start
 * times in virtual ms, ascending; `out` is filled and the count returned. Day 0 is a Monday.
 */
export function sessionStarts(p: SimParams, pop: Population, cdf: Float64Array, u: number, localDay: number, out: Float64Array): number {
  const r = stream(mix(p.seed, u, localDay, 7));
  const seg = p.segments[pop.segment[u] as number] as SimParams["segments"][number];
  const dow = ((localDay % 7) + 7) % 7; // 0 = Monday
  const pActive = dow >= 5 ? seg.pWeekend : seg.pWeekday;
  if (r() >= pActive) return 0;
  const count = Math.min(out.length, 1 + poisson(r, seg.extraSessions));
  const localMidnight = localDay * DAY - (pop.offset[u] as number) * HOUR;
  for (let k = 0; k < count; k++) {
    const x = r();
    let h = 0;
    while (h < 23 && x > (cdf[h] as number)) h++;
    out[k] = localMidnight + h * HOUR + Math.floor(r() * HOUR);
  }
  // Insertion sort (a handful of entries).
  for (let i = 1; i < count; i++) {
    const v = out[i] as number;
    let j = i - 1;
    while (j >= 0 && (out[j] as number) > v) {
      out[j + 1] = out[j] as number;
      j--;
    }
    out[j + 1] = v;
  }
  return count;
}

/** Length of session `k` of (user, local day), and the seed of its request stream. */
export function sessionShape(p: SimParams, u: number, localDay: number, k: number): { lengthMs: number; requestSeed: number } {
  const r = stream(mix(p.seed, u, localDay, 100 + k));
  const lengthMs = Math.round(Math.min(p.sessionMaxMs, p.sessionMedianMs * Math.exp(p.sessionSigma * standardNormal(r))));
  return { lengthMs, requestSeed: mix(p.seed, u, localDay, 200 + k) };
}

/** For tests of the generator: expected share of users active on a weekday. */
export function expectedWeekdayActiveShare(p: SimParams): number {
  return p.segments.reduce((a, s) => a + s.share * s.pWeekday, 0);
}
