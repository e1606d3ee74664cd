/**
 * The fault windows of a soak and the attribution of request-path events to them. A window is a fault
 * plus its recovery allowance (how long its effects may last by design, `allowancesFor`); some are
 * scoped to users: the users whose job was running on a killed worker, a user whose rotation was lost
 * (until their next stored pair), and a user who received an injected failure answer (a 5xx, a 429: the
 * fault answered in Cal.com's place) until their next stored pair. Every notable request-path event is
 * counted in each window it overlaps; one that overlaps none is a violation of the pass rule.
 */
import type { CallSeen, SoakResult } from "./soak.js";
import { Timeline, type FaultWindow, type WindowKind } from "./timeline.js";
import type { RequestEvent } from "./traffic.js";

export interface Allowances {
  jobLockMs: number;
  sweepMs: number;
  lines: { kind: WindowKind; text: string }[];
}

/** A user's lost rotation: its window lasts until their next stored pair plus this. */
export const LOST_ROTATION_AFTER_REPAIR_MS = 10_000;
/**
 * A user's injected failure answer: its window lasts until their next stored pair plus this. Request
 * paths that read the row before that pair was written overlap the window anyway; this only covers the
 * pair's audit row being stamped when its write starts (before it commits) and clock reads around it.
 */
export const FAILED_ANSWER_AFTER_REPAIR_MS = 2_000;

export interface WindowRow {
  label: string;
  span: string;
  requests: number | null;
  waited: number;
  rejected: number;
  failed: Map<string, number>;
  slow: number;
}

export interface Attribution {
  windows: FaultWindow[];
  byWindow: WindowRow[];
  outside: WindowRow;
  violations: RequestEvent[];
  /** Of the violations, slow calls that overlapped a stall of the soak process itself (annotation only). */
  slowInStall: RequestEvent[];
}

function num(settings: Record<string, string>, key: string, fallback: number): number {
  const v = Number(settings[key]);
  return Number.isFinite(v) ? v : fallback;
}

export function allowancesFor(r: SoakResult): Allowances {
  const timeoutMs = num(r.settings, "CAL_HTTP_TIMEOUT_MS", 10_000);
  const leaseMs = num(r.settings, "REFRESH_LEASE_SECONDS", 5) * 1000;
  const jobLockMs = timeoutMs + 2_000 + leaseMs;
  const sweepMs = num(r.settings, "SWEEP_INTERVAL_SECONDS", 60) * 1000;
  const s = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  return {
    jobLockMs,
    sweepMs,
    lines: [
      {
        kind: "worker-kill",
        text: `restarted + 2 × job lock (${s(jobLockMs)}) + 5 s, for the users whose refresh job was running: their jobs are taken over once the lock lapses and a stalled check runs`,
      },
      {
        kind: "redis-restart",
        text: `back up + 2 × sweep interval (${s(sweepMs)}) + job lock + 10 s: the sweep rebuilds the jobs Redis forgot (rows due within two intervals)`,
      },
      { kind: "postgres-cut", text: "restored + 30 s: jobs that failed on the database are retried after 2.5–5 s, 5–10 s, 10–20 s" },
      {
        kind: "calcom-unreachable",
        text: "reachable again + the outage's length + 30 s: a failure streak's cool-down grows with its age, then the retry backoff",
      },
      {
        kind: "rate-limit-storm",
        text: "storm over + the reset + 20 s: the queue pauses until the reset, rows keep it as a cool-down, then the backlog drains",
      },
      {
        kind: "lost-rotation",
        text: `that user only, from the lost call until their next stored pair + ${s(LOST_ROTATION_AFTER_REPAIR_MS)} (to the end of traffic if none)`,
      },
      {
        kind: "failed-answer",
        text:
          `that user only, from a token call of theirs that an injected fault answered (5xx, 429; the answer reached the caller) until their next stored pair + ${s(FAILED_ANSWER_AFTER_REPAIR_MS)} ` +
          "(to the end of traffic if none): the row keeps the retry time as a cool-down that request paths obey (a token that expires meanwhile fails fast), and the job retries then",
      },
    ],
  };
}

/** An injected fault answered this call in Cal.com's place (nothing rotated), and the answer was written to the caller. */
export function injectedFailureAnswer(c: CallSeen): boolean {
  return c.fault !== undefined && c.outcome !== "rotated" && (c.delivery === "delivered" || c.delivery === "closedAfter");
}

/** The first stored pair of the user after `t`, from the user's sorted stored-pair times. */
function nextStored(storedAfter: Map<string, number[]>, user: string, t: number): number | undefined {
  return (storedAfter.get(user) ?? []).find((x) => x > t);
}

export function buildWindows(
  r: SoakResult,
  a: Allowances,
  /** Rotations Cal.com committed that were never stored. */
  lost: { call: CallSeen; cause: string }[],
  /** Each user's stored-pair times, sorted. */
  storedAfter: Map<string, number[]>,
): Timeline {
  const timeline = new Timeline();
  const stormReset = r.options.rateLimitResetSeconds * 1000;
  for (const f of r.faults) {
    const base = { start: f.start, faultEnd: f.faultEnd, label: f.detail };
    switch (f.kind) {
      case "worker-kill":
        timeline.add({
          ...base,
          kind: f.kind,
          end: f.faultEnd + 2 * a.jobLockMs + 5_000,
          ...(f.users ? { users: new Set(f.users) } : {}),
        });
        break;
      case "redis-restart":
        timeline.add({ ...base, kind: f.kind, end: f.faultEnd + 2 * a.sweepMs + a.jobLockMs + 10_000 });
        break;
      case "postgres-cut":
        timeline.add({ ...base, kind: f.kind, end: f.faultEnd + 30_000 });
        break;
      case "calcom-unreachable":
        timeline.add({ ...base, kind: f.kind, end: f.faultEnd + (f.faultEnd - f.start) + 30_000 });
        break;
      case "rate-limit-storm":
        timeline.add({ ...base, kind: f.kind, end: f.faultEnd + stormReset + 20_000 });
        break;
    }
  }
  for (const l of lost) {
    const user = l.call.userUlid;
    if (!user) continue;
    const next = nextStored(storedAfter, user, l.call.answered);
    timeline.add({
      kind: "lost-rotation",
      label: l.cause,
      start: l.call.arrived,
      faultEnd: l.call.answered,
      end: next === undefined ? r.trafficMs : next + LOST_ROTATION_AFTER_REPAIR_MS,
      users: new Set([user]),
    });
  }
  for (const c of r.calls) {
    const user = c.userUlid;
    if (!user || !injectedFailureAnswer(c)) continue;
    const next = nextStored(storedAfter, user, c.answered);
    timeline.add({
      kind: "failed-answer",
      label: `${c.route} answered ${c.fault}`,
      start: c.arrived,
      faultEnd: c.answered,
      end: next === undefined ? r.trafficMs : next + FAILED_ANSWER_AFTER_REPAIR_MS,
      users: new Set([user]),
      ...(next === undefined ? { unrepaired: true } : {}),
    });
  }
  return timeline;
}

function emptyRow(label: string, span: string, requests: number | null): WindowRow {
  return { label, span, requests, waited: 0, rejected: 0, failed: new Map(), slow: 0 };
}

function count(row: WindowRow, e: RequestEvent): void {
  if (e.waitedOnRefresh) row.waited += 1;
  if (e.rejectedStatus !== undefined) row.rejected += 1;
  if (e.failure !== undefined) row.failed.set(e.failure, (row.failed.get(e.failure) ?? 0) + 1);
  if (e.slow) row.slow += 1;
}

/** Per-user windows are summed up by kind, one row each. */
const SCOPED_ROWS: Partial<Record<WindowKind, string>> = {
  "worker-kill": "worker kills (users whose job was running)",
  "lost-rotation": "lost rotations (that user, until repaired)",
  "failed-answer": "injected failure answers (that user, until their next stored pair)",
};

/** Every notable request-path event, counted in each window it overlaps; the rest are violations. */
export function attribute(r: SoakResult, timeline: Timeline): Attribution {
  const windows = timeline.all();
  const perSecond = r.traffic.perSecond;
  const requestsIn = (w: FaultWindow) => {
    let n = 0;
    for (let s = Math.floor(w.start / 1000); s <= Math.floor(Math.min(w.end, r.trafficMs) / 1000); s++) n += perSecond[s] ?? 0;
    return n;
  };
  const span = (w: FaultWindow) => `${(w.start / 1000).toFixed(1)}–${(w.end / 1000).toFixed(1)} s`;
  const rows = new Map<number, WindowRow>();
  for (const w of windows) {
    if (w.users === undefined) rows.set(w.id, emptyRow(`${w.kind}: ${w.label}`, span(w), requestsIn(w)));
  }
  const scopedRows = new Map<WindowKind, WindowRow>();
  for (const [kind, label] of Object.entries(SCOPED_ROWS) as [WindowKind, string][]) {
    const scoped = windows.filter((w) => w.kind === kind && w.users !== undefined);
    const unrepaired = scoped.filter((w) => w.unrepaired).length;
    // The longest one shows a recovery that took long (a window lasts as long as its user's recovery did).
    const longest = Math.max(0, ...scoped.filter((w) => !w.unrepaired).map((w) => w.end - w.start));
    const spanText =
      `${scoped.length} windows` +
      (scoped.length > unrepaired ? `, longest ${(longest / 1000).toFixed(1)} s` : "") +
      (unrepaired > 0 ? ` (${unrepaired} without a later stored pair: to the end of traffic)` : "");
    scopedRows.set(kind, emptyRow(label, spanText, null));
  }
  const outside = emptyRow("outside every window", "", null);
  const violations: RequestEvent[] = [];
  const slowInStall: RequestEvent[] = [];
  // The soak process is the web app here: a call that was slow while its event loop was blocked may have
  // waited on its host (or on whatever blocked it, the module included). Still a violation; annotated.
  const inStall = (e: RequestEvent) => (r.stalls ?? []).some((s) => s.t <= e.end && s.t + s.ms >= e.start);
  const isViolation = (e: RequestEvent) =>
    e.waitedOnRefresh || e.rejectedStatus !== undefined || e.failure !== undefined || (r.options.slowCountsAsViolation && e.slow);
  for (const e of r.traffic.notable) {
    const ws = timeline.windowsOf(e);
    if (ws.length === 0) {
      count(outside, e);
      if (isViolation(e)) violations.push(e);
      if (isViolation(e) && e.slow && inStall(e)) slowInStall.push(e);
      continue;
    }
    const scopedKinds = new Set<WindowKind>();
    for (const w of ws) {
      const row = rows.get(w.id);
      if (row) count(row, e);
      else scopedKinds.add(w.kind);
    }
    for (const kind of scopedKinds) {
      const row = scopedRows.get(kind);
      if (row) count(row, e);
    }
  }
  return {
    windows,
    byWindow: [...rows.values(), ...scopedRows.values()],
    outside,
    violations: violations.sort((a, b) => a.start - b.start),
    slowInStall,
  };
}
