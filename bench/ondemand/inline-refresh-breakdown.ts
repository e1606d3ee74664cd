/**
 * inline-refresh, the breakdown: per-step rows and notes from the traced refreshes (store, Cal.com
 * client and cipher wrapped with timers, bench/lib/trace.ts). The section is in inline-refresh.ts.
 */
import { fmtMs, pct } from "../lib/format.js";
import { mean, median, pairedDiff, quantile } from "../lib/stats.js";
import type { Trace, Tracer } from "../lib/trace.js";
import type { BenchContext, Row } from "../lib/types.js";

/** One traced refresh: its end-to-end time, the raw fetch of its iteration, and its step timings. */
export interface TracedSample {
  e2e: number;
  base: number;
  trace: Trace;
}

/** The awaited store writes a refresh can commit, with a short name for the notes. */
const COMMIT_STEPS: Record<string, string> = {
  "store.acquireLease": "lease",
  "store.saveRotated": "CAS + audit row",
  "store.insertAudit": "separate audit INSERT",
  "store.releaseLease": "lease release",
};

/** What each traced step does on the refresh path (for the breakdown's "how" column). */
const STEP_DETAIL: Record<string, string> = {
  "store.get": "SELECT by primary key + 2 decrypts, per call",
  "store.acquireLease": "lease UPDATE … RETURNING + 2 decrypts (commit)",
  "calcom.refreshManaged": "HTTP POST to the fake through got (incl. the fake's own time)",
  "store.saveRotated": "2 encrypts + CAS UPDATE with the audit INSERT in the same statement (one commit)",
  "store.insertAudit": "separate audit INSERT (commit), awaited",
  "store.releaseLease": "lease release UPDATE (commit)",
  "store.touchLastUsed": "last_used_at UPDATE (commit), NOT awaited: off the critical path",
  "cipher.decrypt": "AES-256-GCM decrypt (inside the store steps above)",
  "cipher.encrypt": "AES-256-GCM encrypt (inside saveRotated)",
};
const OFF_PATH = new Set(["store.touchLastUsed", "cipher.decrypt", "cipher.encrypt"]);

/** Per-step views of the traced samples. */
function analyse(tracer: Tracer, tr: TracedSample[]) {
  const traces = tr.map((t) => t.trace);
  const trE2e = tr.map((t) => t.e2e);
  const trOverhead = tr.map((t) => t.e2e - t.base);
  const perStep = (label: string) => traces.map((t) => t.totals.get(label) ?? 0);
  const callsPer = (label: string) => median(traces.map((t) => t.counts.get(label) ?? 0));
  const onPath = tracer.labels.filter((l) => !OFF_PATH.has(l));
  const other = traces.map((t, i) => (trE2e[i] as number) - onPath.reduce((acc, l) => acc + (t.totals.get(l) ?? 0), 0));
  const httpExtra = pairedDiff(
    perStep("calcom.refreshManaged"),
    tr.map((t) => t.base),
  );
  return { traces, trE2e, trOverhead, perStep, callsPer, onPath, other, httpExtra };
}

export function breakdownRows(tracer: Tracer, tr: TracedSample[]): Row[] {
  const { trE2e, trOverhead, perStep, callsPer, other, httpExtra } = analyse(tracer, tr);
  const rows: Row[] = [];
  rows.push({
    metric: "breakdown: traced end-to-end p50",
    value: median(trE2e),
    unit: "ms",
    detail: `${tr.length} refreshes through timed wrappers; paired overhead p50 ${fmtMs(median(trOverhead))}, p99 ${fmtMs(quantile(trOverhead, 0.99))}`,
  });
  for (const label of tracer.labels) {
    const xs = perStep(label);
    const calls = callsPer(label);
    rows.push({
      metric: `breakdown: ${label}${calls === 1 ? "" : ` ×${calls}`}`,
      value: median(xs),
      unit: "ms",
      detail: `${STEP_DETAIL[label] ?? ""}; mean ${fmtMs(mean(xs))}, p99 ${fmtMs(quantile(xs, 0.99))}`,
    });
  }
  rows.push({
    metric: "breakdown: other (logic, plumbing)",
    value: median(other),
    unit: "ms",
    detail: "end-to-end − sum of the awaited steps",
  });
  rows.push({
    metric: "breakdown: got vs raw fetch",
    value: median(httpExtra),
    unit: "ms",
    detail: "calcom.refreshManaged − paired raw fetch (HTTP client overhead)",
  });
  return rows;
}

export function breakdownNotes(ctx: BenchContext, tracer: Tracer, tr: TracedSample[], commits: number[], iterations: number): void {
  const { traces, trOverhead, perStep, callsPer, onPath, other, httpExtra } = analyse(tracer, tr);
  // Share of the paired overhead per awaited non-HTTP step (means, so the parts add up).
  const stepStats = onPath.map((label) => ({ label, avg: mean(perStep(label)) }));
  const meanOverhead = mean(trOverhead);
  const shares = [
    ...stepStats.filter((st) => st.label !== "calcom.refreshManaged"),
    { label: "got vs fetch", avg: mean(httpExtra) },
    { label: "other", avg: mean(other) },
  ].sort((a, b) => b.avg - a.avg);
  const commitSteps = onPath.filter((l) => COMMIT_STEPS[l] !== undefined);
  const commitCount = commitSteps.reduce((acc, l) => acc + callsPer(l), 0);
  const commitList = commitSteps.map((l) => `${COMMIT_STEPS[l]}${callsPer(l) === 1 ? "" : ` ×${callsPer(l)}`}`).join(", ");
  const writesMean = commitSteps.reduce((acc, l) => acc + mean(perStep(l)), 0);
  const reads = callsPer("store.get");
  const touchesPer = callsPer("store.touchLastUsed");
  ctx.note(
    "Overhead is paired: every iteration runs a raw `fetch` refresh of a fresh fake user, an inline refresh, a bare commit and (every other iteration) a traced inline refresh, in rotating order; overhead = end-to-end − the raw fetch of the same iteration. The difference of percentiles is a cross-check.",
  );
  ctx.note(
    `Critical path of one inline refresh (traced, medians of call counts): ${onPath.map((l) => `${l}${callsPer(l) === 1 ? "" : ` ×${callsPer(l)}`}`).join(" → ")}: ` +
      `${reads} primary-key read${reads === 1 ? " (the refresher reuses the row ensureValidCalToken read)" : "s"}, ` +
      `${commitCount} awaited commit${commitCount === 1 ? "" : "s"} (${commitList}), ` +
      `${callsPer("cipher.decrypt")} decrypts and ${callsPer("cipher.encrypt")} encrypts. ` +
      (touchesPer > 0
        ? `touchLastUsed also commits a write concurrently (${touchesPer} per refresh, not awaited: these users had not been touched in this process yet).`
        : "touchLastUsed did not reach the store (in-memory throttle)."),
  );
  ctx.note(
    `Mean traced overhead ${fmtMs(meanOverhead)} by step (means): ${shares.map((st) => `${st.label} ${fmtMs(st.avg)} (${pct(st.avg, meanOverhead)})`).join(", ")}. ` +
      `The ${commitCount} awaited write${commitCount === 1 ? "" : "s"} together: ${fmtMs(writesMean)} ≈ ${(writesMean / mean(commits)).toFixed(1)} bare commits (mean ${fmtMs(mean(commits))}); crypto in total ${fmtMs(mean(perStep("cipher.decrypt")) + mean(perStep("cipher.encrypt")))}.`,
  );
  const nth = (label: string, k: number) => median(traces.map((t) => t.each.get(label)?.[k] ?? Number.NaN).filter(Number.isFinite));
  ctx.note(
    `Reads: store.get p50 ${fmtMs(nth("store.get", 0))} for ensureValidCalToken's read` +
      (reads > 1 ? `, ${fmtMs(nth("store.get", 1))} for the second read` : "") +
      (touchesPer > 0
        ? `; the non-awaited touchLastUsed write (p50 ${fmtMs(median(perStep("store.touchLastUsed")))}) overlaps the lease UPDATE.`
        : "."),
  );
  ctx.note(
    `p99 of ${iterations} samples is roughly the 3rd-worst refresh and of ${tr.length} traced ones the 2nd-worst: expect it to move a lot between runs on a shared machine; the p50s are the stable figures.`,
  );
}
