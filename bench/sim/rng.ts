/**
 * Deterministic randomness: a 32-bit mixer to derive independent seeds from (seed, user, day, session)
 * and mulberry32 streams. Nothing here reads Math.random or a clock.
 */

/** murmur3's finaliser: a good 32-bit avalanche. */
export function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A seed for one (seed, a, b, c) tuple; independent-looking for neighbouring inputs. */
export function mix(seed: number, a: number, b = 0, c = 0): number {
  let h = fmix32(seed ^ 0x9e3779b9);
  h = fmix32(h ^ Math.imul(a + 1, 0x9e3779b1));
  h = fmix32(h ^ Math.imul(b + 1, 0x85ebca77));
  h = fmix32(h ^ Math.imul(c + 1, 0xc2b2ae3d));
  return h;
}

/** One mulberry32 step on a state kept by the caller (so per-user streams fit in a Uint32Array). */
export function mulberryNext(state: number): { state: number; value: number } {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { state: s, value: ((t ^ (t >>> 14)) >>> 0) / 4294967296 };
}

/** A mulberry32 stream as a closure: `() => [0, 1)`, the shape of src/core/types.ts `Rand`. */
export function stream(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function exponential(rand: () => number, mean: number): number {
  return -Math.log(1 - rand()) * mean;
}

/** Knuth's method; fine for the small means used here. */
export function poisson(rand: () => number, mean: number): number {
  if (mean <= 0) return 0;
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

export function standardNormal(rand: () => number): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function uniform(rand: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rand();
}
