/** Markdown tables from simulation results. */
import type { RunResult } from "./engine.js";
import type { SimParams } from "./params.js";

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const pct = (x: number, digits = 1) => `${(100 * x).toFixed(digits)} %`;
const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

export function measuredDays(p: SimParams): number {
  return p.days - p.warmupDays;
}

export function totalCalls(r: RunResult): number {
  return r.calls.inline + r.calls.keepFresh + r.calls.keepAlive + r.calls.idleSweep;
}

export function failedShare(r: RunResult): number {
  return ratio(r.failedBudget + r.failedGrant, r.requests);
}

export function parametersBlock(p: SimParams): string {
  const seg = p.segments.map((s) => `${s.name} ${pct(s.share, 0)} (active on ${pct(s.pWeekday, 1)} of weekdays)`).join(", ");
  const reg = p.regions.map((r) => `${r.name} UTC${r.utcOffsetHours >= 0 ? "+" : ""}${r.utcOffsetHours} ${pct(r.share, 0)}`).join(", ");
  return [
    `Seed ${p.seed}; ${p.days} simulated days from a Monday, the first ${p.warmupDays} excluded from rates and request figures (initial backlogs); grants lost count the whole run.`,
    `Users: ${seg}; ${reg}. Sessions start on a business-hours curve (local time), last log-normal (median ${p.sessionMedianMs / 60_000} min, σ ${p.sessionSigma}, ≤ ${p.sessionMaxMs / 3_600_000} h), one request path every ${p.requestGapMs / 1000} s on average.`,
    `Tokens: OAuth2 ${pct(p.kinds.oauth2.share, 0)} (access ${p.kinds.oauth2.accessTtlMs / 1000} s, refresh token 30 d, strict rotation), managed ${pct(p.kinds.managed.share, 0)} (access ${p.kinds.managed.accessTtlMs / 1000} s). Initial refresh tokens 0–28 d old.`,
    `Budget: ours ${p.ourPerMinute}/min (request paths first, background ${p.ourPerMinute - Math.max(1, Math.floor(p.ourPerMinute / 5))}/min), Cal.com ${p.calcomPerMinute}/min (the seed, a, meets it directly); a call costs ${p.callRoundTripMs} ms.`,
  ].join("\n");
}

export function strategyTable(results: RunResult[], p: SimParams): string {
  const days = measuredDays(p);
  const head = `| strategy | request paths that waited | waits per active user-day | request paths failed (budget · dead grant) | token calls/min mean · p99 · max | token calls/day | proactive refreshes that saved a wait | OAuth2 grants lost in ${p.days} d | refresh-token deadline alerts |`;
  const sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|";
  const rows = results.map((r) => {
    const proactive = r.calls.keepFresh;
    const useful = proactive > 0 ? pct(ratio(proactive - r.keepFreshUnused, proactive)) : "—";
    const oauthUsers = Math.round(r.users * p.kinds.oauth2.share);
    return [
      r.strategy.label,
      pct(ratio(r.waited, r.requests), 2),
      ratio(r.waited, r.activeUserDays).toFixed(2),
      `${pct(failedShare(r), 2)} (${pct(ratio(r.failedBudget, r.requests), 2)} · ${pct(ratio(r.failedGrant, r.requests), 2)})`,
      `${r.perMinute.mean.toFixed(0)} · ${r.perMinute.p99} · ${r.perMinute.max}`,
      int(totalCalls(r) / days),
      useful,
      r.lost > 0 ? `**${int(r.lost)}** (${pct(ratio(r.lost, oauthUsers))})` : "0",
      int(r.atRisk),
    ];
  });
  return [head, sep, ...rows.map((c) => `| ${c.join(" | ")} |`)].join("\n");
}

/** Sizing inputs for deliverable 4 (d′'s figures). */
export function sizingTable(results: RunResult[], p: SimParams): string {
  const days = measuredDays(p);
  const head =
    "| users | token calls/min mean · p99 · max | token calls/day (inline · keep-fresh · keep-alive) | worker jobs/min (with no-call wakes) | job-limiter stops | request paths refused for want of budget |";
  const sep = "|---:|---:|---:|---:|---:|---:|";
  const rows = results.map((r) => [
    int(r.users),
    `${r.perMinute.mean.toFixed(0)} · ${r.perMinute.p99} · ${r.perMinute.max}`,
    `${int(totalCalls(r) / days)} (${int(r.calls.inline / days)} · ${int(r.calls.keepFresh / days)} · ${int(r.calls.keepAlive / days)})`,
    r.jobsPerMinute.toFixed(0),
    int(r.limiterClosed),
    `${int(r.failedBudget)} (${pct(ratio(r.failedBudget, r.requests), 2)})`,
  ]);
  return [head, sep, ...rows.map((c) => `| ${c.join(" | ")} |`)].join("\n");
}

/** The keep-fresh window trade-off: what each extra proactive call buys. */
export function windowTable(results: RunResult[], p: SimParams): string {
  const days = measuredDays(p);
  const base = results.find((r) => r.strategy.keepFreshWindowMs === 0) ?? results[0];
  const head =
    "| keep-fresh window | request paths that waited | waits per active user-day | token calls/day | extra calls per wait avoided (vs no keep-fresh) | token calls/min p99 · max |";
  const sep = "|---|---:|---:|---:|---:|---:|";
  const rows = results.map((r) => {
    const extra = base ? totalCalls(r) - totalCalls(base) : 0;
    const avoided = base ? base.waited - r.waited : 0;
    return [
      r.strategy.label,
      pct(ratio(r.waited, r.requests), 2),
      ratio(r.waited, r.activeUserDays).toFixed(2),
      int(totalCalls(r) / days),
      r === base ? "—" : avoided > 0 ? (extra / avoided).toFixed(1) : "∞",
      `${r.perMinute.p99} · ${r.perMinute.max}`,
    ];
  });
  return [head, sep, ...rows.map((c) => `| ${c.join(" | ")} |`)].join("\n");
}

export interface CapacityRow {
  label: string;
  grants: string;
  requests: string;
  onTime: string;
  capacity: string;
  runs: number;
}

export function capacityTable(rows: CapacityRow[]): string {
  const head =
    "| strategy | no grant lost or at risk up to | request paths never refused up to | proactive refreshes on time up to | users one OAuth client keeps fresh |";
  const sep = "|---|---:|---:|---:|---:|";
  return [head, sep, ...rows.map((r) => `| ${r.label} | ${r.grants} | ${r.requests} | ${r.onTime} | **${r.capacity}** |`)].join("\n");
}

export function lostByWeek(r: RunResult): string {
  const weeks: number[] = [];
  for (let d = 0; d < r.lostByDay.length; d++) {
    const w = Math.floor(d / 7);
    weeks[w] = (weeks[w] ?? 0) + (r.lostByDay[d] as number);
  }
  return weeks.map((x, i) => `w${i + 1} ${int(x)}`).join(", ");
}
