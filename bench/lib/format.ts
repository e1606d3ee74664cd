/** Number formatting for the sections' notes and "how" columns (the tables use report.ts). */

export function fmtMs(ms: number): string {
  return `${ms.toFixed(ms >= 10 ? 1 : ms >= 1 ? 2 : 3)} ms`;
}

export function fmtUs(us: number): string {
  return `${us.toFixed(us >= 100 ? 0 : 1)} µs`;
}

export function fmtBytes(b: number): string {
  if (b >= 1024 * 1024) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b.toFixed(0)} B`;
}

export function pct(part: number, whole: number): string {
  if (!Number.isFinite(part / whole) || whole <= 0) return "n/a";
  return `${((100 * part) / whole).toFixed(0)} %`;
}
