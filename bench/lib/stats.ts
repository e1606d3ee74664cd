/** Small, dependency-free statistics for latency samples (milliseconds). */

/** Quantile of an ascending array, linear interpolation between closest ranks (R type 7). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function sortedCopy(samples: readonly number[]): number[] {
  return [...samples].sort((x, y) => x - y);
}

export function quantile(samples: readonly number[], q: number): number {
  return quantileSorted(sortedCopy(samples), q);
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  let s = 0;
  for (const x of samples) s += x;
  return s / samples.length;
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = sortedCopy(samples);
  return {
    n: sorted.length,
    p50: quantileSorted(sorted, 0.5),
    p90: quantileSorted(sorted, 0.9),
    p99: quantileSorted(sorted, 0.99),
    mean: mean(sorted),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Element-wise a[i] - b[i] (paired samples). */
export function pairedDiff(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new Error(`pairedDiff: ${a.length} vs ${b.length} samples`);
  return a.map((x, i) => x - (b[i] as number));
}
