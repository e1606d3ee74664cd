/**
 * The capacity figure: an SVG drawn here (no chart library), screenshotted to PNG with playwright-core
 * and the system Chromium (headless, no network).
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { RunResult } from "./engine.js";
import { DAY, MINUTE, type SimParams } from "./params.js";

const COLORS: Record<string, string> = {
  a: "#7f7f7f",
  b: "#1f77b4",
  c: "#ff7f0e",
  d: "#d62728",
  dp: "#2ca02c",
};

/** Dashes so that strategies that coincide (b and d when both saturate, a and d losing the same grants) stay visible. */
const DASHES: Record<string, string> = { a: "3 3", b: "9 5" };

const WIDTH = 1400;
const PANEL_W = 660;
const PANEL_H = 330;

/** Drawing order (later on top): the saturated flat lines first, so c's sweep and d′ stay visible over them. */
const Z_ORDER = ["d", "b", "a", "c", "dp"];

function byZ<T extends { key: string }>(items: T[]): T[] {
  const z = (k: string) => {
    const i = Z_ORDER.indexOf(k);
    return i < 0 ? Z_ORDER.length : i;
  };
  return [...items].sort((x, y) => z(x.key) - z(y.key));
}

interface Series {
  key: string;
  label: string;
  color: string;
  points: number[];
  dash?: string;
}

function dash(r: RunResult): { dash?: string } {
  const d = DASHES[r.strategy.kind];
  return d ? { dash: d } : {};
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceMax(x: number): number {
  if (x <= 0) return 1;
  const pow = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * pow >= x) return m * pow;
  return 10 * pow;
}

function fmtTick(v: number): string {
  if (v >= 1_000_000) return `${(v / 1_000_000).toFixed(v % 1_000_000 === 0 ? 0 : 1)}M`;
  if (v >= 1000) return `${(v / 1000).toFixed(v % 1000 === 0 ? 0 : 1)}k`;
  return String(Math.round(v * 100) / 100);
}

/** One line panel at (x0, y0): series over a shared x range, with optional horizontal reference lines. */
function linePanel(
  x0: number,
  y0: number,
  title: string,
  xLabels: { at: number; text: string }[],
  xMax: number,
  series: Series[],
  refs: { value: number; text: string; color: string }[],
  yLabel: string,
  yMaxHint?: number,
): string {
  const left = 64;
  const right = 16;
  const top = 34;
  const bottom = 40;
  const w = PANEL_W - left - right;
  const h = PANEL_H - top - bottom;
  const dataMax = Math.max(1, ...series.flatMap((s) => s.points), ...refs.map((r) => r.value));
  const yMax = niceMax(Math.max(dataMax * 1.05, yMaxHint ?? 0));
  const sx = (i: number) => x0 + left + (i / xMax) * w;
  const sy = (v: number) => y0 + top + h - (Math.min(v, yMax) / yMax) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + left}" y="${y0 + 22}" class="title">${esc(title)}</text>`);
  out.push(`<rect x="${x0 + left}" y="${y0 + top}" width="${w}" height="${h}" class="frame"/>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    const y = sy(v);
    out.push(`<line x1="${x0 + left}" x2="${x0 + left + w}" y1="${y}" y2="${y}" class="grid"/>`);
    out.push(`<text x="${x0 + left - 6}" y="${y + 4}" class="tick" text-anchor="end">${fmtTick(v)}</text>`);
  }
  for (const l of xLabels) {
    const x = sx(l.at);
    out.push(`<line x1="${x}" x2="${x}" y1="${y0 + top}" y2="${y0 + top + h}" class="grid"/>`);
    out.push(`<text x="${x}" y="${y0 + top + h + 16}" class="tick" text-anchor="middle">${esc(l.text)}</text>`);
  }
  out.push(
    `<text x="${x0 + 16}" y="${y0 + top + h / 2}" class="axis" transform="rotate(-90 ${x0 + 16} ${y0 + top + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  for (const s of series) {
    const pts = s.points.map((v, i) => `${sx(i).toFixed(1)},${sy(v).toFixed(1)}`).join(" ");
    out.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="${s.dash ? 2.2 : 1.6}" ${s.dash ? `stroke-dasharray="${s.dash}"` : ""}/>`,
    );
  }
  for (const r of refs) {
    const y = sy(r.value);
    out.push(
      `<line x1="${x0 + left}" x2="${x0 + left + w}" y1="${y}" y2="${y}" stroke="${r.color}" stroke-width="1.4" stroke-dasharray="6 4"/>`,
    );
    out.push(`<text x="${x0 + left + w - 4}" y="${y - 5}" class="ref" text-anchor="end" fill="${r.color}">${esc(r.text)}</text>`);
  }
  return out.join("\n");
}

function barPanel(
  x0: number,
  y0: number,
  title: string,
  groups: { label: string; bars: { key: string; value: number; failed: number; text: string }[] }[],
  yLabel: string,
): string {
  const left = 64;
  const right = 16;
  const top = 34;
  const bottom = 40;
  const w = PANEL_W - left - right;
  const h = PANEL_H - top - bottom;
  const yMax = niceMax(Math.max(0.001, ...groups.flatMap((g) => g.bars.map((b) => b.value))) * 1.15);
  const sy = (v: number) => y0 + top + h - (v / yMax) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + left}" y="${y0 + 22}" class="title">${esc(title)}</text>`);
  out.push(`<rect x="${x0 + left}" y="${y0 + top}" width="${w}" height="${h}" class="frame"/>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    const y = sy(v);
    out.push(`<line x1="${x0 + left}" x2="${x0 + left + w}" y1="${y}" y2="${y}" class="grid"/>`);
    out.push(`<text x="${x0 + left - 6}" y="${y + 4}" class="tick" text-anchor="end">${(100 * v).toFixed(v < 0.1 ? 1 : 0)} %</text>`);
  }
  out.push(
    `<text x="${x0 + 16}" y="${y0 + top + h / 2}" class="axis" transform="rotate(-90 ${x0 + 16} ${y0 + top + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  const gw = w / groups.length;
  groups.forEach((g, gi) => {
    const bw = Math.min(44, (gw - 20) / Math.max(1, g.bars.length));
    const gx = x0 + left + gi * gw + (gw - bw * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const x = gx + bi * bw;
      const y = sy(b.value);
      out.push(`<rect x="${x}" y="${y}" width="${bw - 3}" height="${y0 + top + h - y}" fill="${COLORS[b.key] ?? "#444"}"/>`);
      // The failed part, on top of the bar, darker and hatched.
      const fy = sy(b.failed);
      const fh = y0 + top + h - fy;
      if (fh > 0.5) out.push(`<rect x="${x}" y="${y}" width="${bw - 3}" height="${fh}" fill="url(#hatch)"/>`);
      out.push(`<text x="${x + (bw - 3) / 2}" y="${y - 4}" class="bar" text-anchor="middle">${esc(b.text)}</text>`);
    });
    out.push(`<text x="${x0 + left + gi * gw + gw / 2}" y="${y0 + top + h + 16}" class="tick" text-anchor="middle">${esc(g.label)}</text>`);
  });
  return out.join("\n");
}

/** Calls per minute of one weekday (the first Wednesday after warm-up), smoothed over `smooth` minutes. */
function dayCalls(r: RunResult, p: SimParams, smooth: number): { day: number; points: number[] } {
  let day = p.warmupDays;
  while (day % 7 !== 2 && day + 1 < p.days) day++;
  if (day >= p.days) day = Math.max(0, p.days - 1);
  const from = (day * DAY) / MINUTE;
  const pts: number[] = [];
  for (let m = 0; m < 1440; m += smooth) {
    let s = 0;
    for (let k = 0; k < smooth; k++) s += r.series[from + m + k] ?? 0;
    pts.push(s / smooth);
  }
  return { day, points: pts };
}

export function buildSvg(bySize: Map<number, RunResult[]>, p: SimParams): string {
  const sizes = [...bySize.keys()].sort((a, b) => a - b);
  const hours = [0, 3, 6, 9, 12, 15, 18, 21, 24].map((hh) => ({ at: hh * 12, text: `${String(hh).padStart(2, "0")}:00` }));
  const panels: string[] = [];
  const smooth = 5;
  // Row 1: calls per minute over a weekday, smallest and largest size.
  const lineSizes = sizes.length > 1 ? [sizes[0] as number, sizes.at(-1) as number] : sizes;
  lineSizes.forEach((n, i) => {
    const results = bySize.get(n) ?? [];
    let dayIndex = 0;
    const series = results.map((r) => {
      const d = dayCalls(r, p, smooth);
      dayIndex = d.day;
      return { key: r.strategy.kind, label: r.strategy.label, color: COLORS[r.strategy.kind] ?? "#444", points: d.points, ...dash(r) };
    });
    panels.push(
      linePanel(
        i * (PANEL_W + 40) + 20,
        60,
        `Token calls/min, ${n.toLocaleString("en-US")} users, day ${dayIndex + 1} (a Wednesday; UTC; ${smooth}-min means)`,
        hours,
        288,
        byZ(series),
        [
          { value: p.calcomPerMinute, text: `Cal.com ${p.calcomPerMinute}/min per OAuth client`, color: "#000" },
          { value: p.ourPerMinute, text: `our budget ${p.ourPerMinute}/min`, color: "#9467bd" },
        ],
        "token calls / min",
        p.calcomPerMinute * 1.1,
      ),
    );
  });
  // Row 2: cumulative grants lost over the run (largest size), and request paths that waited / failed.
  const largest = bySize.get(sizes.at(-1) as number) ?? [];
  const dayTicks = Array.from({ length: Math.floor(p.days / 7) + 1 }, (_, k) => ({ at: k * 7, text: `day ${k * 7}` }));
  const lostSeries = largest.map((r) => {
    let acc = 0;
    const pts = [0, ...Array.from(r.lostByDay, (x) => (acc += x))];
    return { key: r.strategy.kind, label: r.strategy.label, color: COLORS[r.strategy.kind] ?? "#444", points: pts, ...dash(r) };
  });
  panels.push(
    linePanel(
      20,
      60 + PANEL_H + 30,
      `OAuth2 grants lost for good, cumulative, ${(sizes.at(-1) as number).toLocaleString("en-US")} users`,
      dayTicks,
      p.days,
      byZ(lostSeries),
      [],
      "grants lost (cumulative)",
    ),
  );
  const groups = sizes.map((n) => ({
    label: `${n.toLocaleString("en-US")} users`,
    bars: (bySize.get(n) ?? []).map((r) => {
      const v = r.requests > 0 ? (r.waited + r.failedBudget + r.failedGrant) / r.requests : 0;
      const f = r.requests > 0 ? (r.failedBudget + r.failedGrant) / r.requests : 0;
      return { key: r.strategy.kind, value: v, failed: f, text: f >= 0.0005 ? `${(100 * f).toFixed(1)}%✗` : "" };
    }),
  }));
  panels.push(
    barPanel(
      PANEL_W + 60,
      60 + PANEL_H + 30,
      "Request paths that waited on a refresh or failed (hatched, ✗ = failed)",
      groups,
      "share of request paths",
    ),
  );
  const legend = (bySize.get(sizes[0] as number) ?? [])
    .map((r, i) => {
      const d = DASHES[r.strategy.kind];
      return `<line x1="${30 + i * 270}" x2="${62 + i * 270}" y1="27" y2="27" stroke="${COLORS[r.strategy.kind] ?? "#444"}" stroke-width="4" ${d ? `stroke-dasharray="${d}"` : ""}/><text x="${70 + i * 270}" y="32" class="legend">${esc(r.strategy.label)}</text>`;
    })
    .join("\n");
  const footer = `<text x="30" y="${60 + 2 * PANEL_H + 48}" class="tick">Simulated (bench/sim, seed ${p.seed}, ${p.days} days, first ${p.warmupDays} days excluded from the rates). Bars: after warm-up. Lines b and d coincide when both are saturated.</text>`;
  const height = 60 + 2 * PANEL_H + 60;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
<style>
  text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; fill: #222; }
  .title { font-size: 14px; font-weight: bold; }
  .tick { font-size: 11px; fill: #444; }
  .axis { font-size: 12px; }
  .ref { font-size: 11px; font-weight: bold; }
  .legend { font-size: 13px; }
  .bar { font-size: 10px; fill: #b00; }
  .frame { fill: none; stroke: #999; }
  .grid { stroke: #e4e4e4; }
</style>
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#000" fill-opacity="0.35"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>
<rect width="100%" height="100%" fill="#fff"/>
${legend}
${panels.join("\n")}
${footer}
</svg>`;
}

export async function writePng(svg: string, path: string): Promise<void> {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ deviceScaleFactor: 1 });
    await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${svg}</body></html>`);
    mkdirSync(dirname(path), { recursive: true });
    await page.locator("svg").screenshot({ path, type: "png" });
  } finally {
    await browser.close();
  }
}
