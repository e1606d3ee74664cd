/**
 * The discrete-event simulation: virtual time in milliseconds from a Monday 00:00 UTC, one binary heap
 * of events, no timers and no I/O. Per-user state lives in typed arrays (1M users ≈ 150 MB).
 *
 * What runs is the real code where the issue asks for it:
 * - request paths decide with `decideOnDemand` (src/core/policy.ts);
 * - every background refresh time comes from `computeNextRefreshAt` (src/core/policy.ts), and after a
 *   refresh it is held MIN_REFRESH_INTERVAL ahead as src/refresh/persist.ts does;
 * - every job priority of strategy d comes from `priorityFor` (src/core/priority.ts), with the
 *   values of `PRIORITY` (src/core/priority.ts);
 * - d′ runs the adopted refresh policy of src/core/grant-policy.ts (`planNextRefresh`, `decideScheduled`,
 *   `priorityForRow`, which themselves call the two functions above).
 * The job mechanics around them are a model: BullMQ's dedup-with-reschedule (a delayed job is moved, its
 * priority kept; a waiting one is left), prioritized FIFO per priority, the worker limiter, the
 * queue-wide pause on a refused budget, the not-due check of jobs/refresh-token.ts, and the sweep of
 * jobs/sweep.ts (rows due within two intervals get a job, or their delayed job moved).
 */
import { decideScheduled, type GrantPolicy, type GrantRow, planNextRefresh, priorityForRow } from "../../src/core/grant-policy.js";
import { computeNextRefreshAt, decideOnDemand, isStillValid } from "../../src/core/policy.js";
import { PRIORITY, priorityFor } from "../../src/core/priority.js";
import { JOBS_PER_BUDGETED_CALL } from "../../src/queue/names.js";
import { FixedWindow, JobLimiter, SlidingBudget } from "./budget.js";
import { EventHeap, JobDeque } from "./heap.js";
import { DAY, HOUR, MINUTE, type SimParams } from "./params.js";
import { buildPopulation, hourCdf, KIND_OAUTH2, type Population, sessionShape, sessionStarts } from "./population.js";
import { stream } from "./rng.js";

export type StrategyKind = "a" | "b" | "c" | "d" | "dp";

export interface StrategySpec {
  id: string;
  kind: StrategyKind;
  label: string;
  /** d′ only: overrides params.keepFreshWindowMs. */
  keepFreshWindowMs?: number;
}

export const STRATEGIES: StrategySpec[] = [
  { id: "a", kind: "a", label: "a. reactive (seed)" },
  { id: "b", kind: "b", label: "b. everyone ahead of time" },
  { id: "c", kind: "c", label: "c. on read + daily idle sweep" },
  { id: "d", kind: "d", label: "d. this project before d′" },
  { id: "dp", kind: "dp", label: "d′. this project (adopted)" },
];

/** Extra d′ variants (keep-fresh window), for the trade-off table: `dp-5m`, `dp-1h`, `dp-24h`, … */
export function strategyById(id: string): StrategySpec {
  const known = STRATEGIES.find((s) => s.id === id);
  if (known) return known;
  const m = /^dp-(\d+)(m|h)$/.exec(id);
  if (m) {
    const ms = Number(m[1]) * (m[2] === "h" ? HOUR : MINUTE);
    return { id, kind: "dp", label: `d′ (keep fresh ${m[1]}${m[2]})`, keepFreshWindowMs: ms };
  }
  throw new Error(`unknown strategy ${id} (a, b, c, d, dp, dp-<n>m, dp-<n>h)`);
}

export interface RunResult {
  strategy: StrategySpec;
  users: number;
  days: number;
  wallMs: number;
  events: number;
  /** Request paths in the measured window (after warm-up). */
  requests: number;
  /** …that refreshed inline and waited one round trip. */
  waited: number;
  /** …that got no usable token because the budget (or Cal.com's 429) refused the inline refresh and the token had expired. */
  failedBudget: number;
  /** …that got no usable token because the grant is dead (reconnect required). */
  failedGrant: number;
  /** …whose inline refresh was refused while the old token was still valid (served, no wait). */
  servedStale: number;
  activeUserDays: number;
  /** Token calls in the measured window, by purpose. */
  calls: { inline: number; keepFresh: number; keepAlive: number; idleSweep: number; deadRefreshToken: number };
  perMinute: { mean: number; p99: number; max: number; minutesOver450: number; minutesOver500: number };
  /** Proactive refreshes (b, d, d′ keep-fresh) made after the token entered the on-demand buffer. */
  keepFreshLate: number;
  /** Proactive refreshes whose access token no request path ever used. */
  keepFreshUnused: number;
  /** Ready → processed, for jobs that made a call: p50, p99 (seconds); backlog at the end. */
  queueDelayP50s: number;
  queueDelayP99s: number;
  backlogAtEnd: number;
  jobsWithoutCall: { notDue: number; idle: number };
  /** Jobs the worker took (calls or not) per minute, measured window; times BullMQ's job limiter was full. */
  jobsPerMinute: number;
  limiterClosed: number;
  /** OAuth2 grants whose refresh token expired unrefreshed (whole run), and grants that came within 24 h of it. */
  lost: number;
  atRisk: number;
  lostIdleSegment: number;
  /** Grants lost per simulated day. */
  lostByDay: Uint32Array;
  /** Total token calls per minute over the whole run (for plots). */
  series: Uint16Array;
  /** Request paths that waited, per minute (whole run). */
  waitSeries: Uint16Array;
}

const EV_DAY = 0;
const EV_SESSION = 1;
const EV_REQ = 2;
const EV_JOB_DUE = 3;
const EV_WORKER = 4;
const EV_SWEEP = 5;
const EV_HOUR = 6;
const EV_CRON = 7;

const JOB_NONE = 0;
const JOB_DELAYED = 1;
const JOB_READY = 2;

const LEVELS = [PRIORITY.onDemand, PRIORITY.keepAlive, PRIORITY.active, PRIORITY.background, PRIORITY.idle] as const;
function levelOf(priority: number): number {
  const i = (LEVELS as readonly number[]).indexOf(priority);
  if (i < 0) throw new Error(`priority ${priority} not modelled`);
  return i;
}

const DUE_SLACK_MS = 2_000; // jobs/refresh-token.ts
/** SIM_CHECK=1: also run decideOnDemand on every request the fast path judged fresh, and fail on a disagreement. */
const CHECK = process.env.SIM_CHECK === "1";
const HIST_BUCKETS = 64;

export function simulate(p: SimParams, spec: StrategySpec, pop: Population = buildPopulation(p)): RunResult {
  const wall0 = performance.now();
  const n = pop.n;
  const kind = spec.kind;
  const endMs = p.days * DAY;
  const warmEnd = p.warmupDays * DAY;
  const minutes = Math.ceil(endMs / MINUTE);
  const cdf = hourCdf(p);
  const srand = stream(p.seed ^ 0x5eed);
  const policy: GrantPolicy = {
    leadMs: p.leadMs,
    jitterMs: p.jitterMs,
    keepFreshWindowMs: spec.keepFreshWindowMs ?? p.keepFreshWindowMs,
    keepAliveLeadMs: p.keepAliveLeadMs,
    keepAliveJitterMs: p.keepAliveJitterMs,
    refreshTokenAtRiskMs: p.refreshTokenAtRiskMs,
    parkMs: p.parkMs,
  };
  const bufferMs = kind === "a" ? 0 : kind === "c" ? p.readMarginMs : p.onDemandBufferMs;
  const D = (ms: number) => new Date(p.startMs + ms);
  const V = (d: Date) => d.getTime() - p.startMs;

  // ── per-user state ──
  const atExp = new Float64Array(n);
  const rtExp = new Float64Array(n);
  const status = new Uint8Array(n); // 0 ACTIVE, 1 RECONNECT_REQUIRED
  const lostFlag = new Uint8Array(n);
  const alerted = new Uint8Array(n);
  const luPrev = new Float64Array(n);
  const ffStart = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const ffLast = new Float64Array(n);
  const nra = new Float64Array(n);
  const jobState = new Uint8Array(n);
  const jobAt = new Float64Array(n);
  const jobPrio = new Uint8Array(n);
  const jobGen = new Uint32Array(n);
  const jobReadyAt = new Float64Array(n);
  const sweepGen = new Uint32Array(n);
  const sessEnd = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const sessNext = new Float64Array(n);
  const sessRng = new Uint32Array(n);
  const sessGen = new Uint32Array(n);
  const reqPending = new Uint8Array(n);
  const lastActiveDay = new Int32Array(n).fill(-1);
  /** 2 = a measured proactive refresh that has not yet saved a request path an inline refresh; with the old expiry. */
  const bgUnused = new Uint8Array(n);
  const kfOldExp = new Float64Array(n);

  // ── machinery ──
  const heap = new EventHeap(1 << 20);
  const levels = LEVELS.map(() => new JobDeque(1 << 12));
  const budget = new SlidingBudget(p.ourPerMinute);
  const calcom = new FixedWindow(p.calcomPerMinute);
  // src/wiring/worker-app.ts: the previous policy's limiter took CAL_REFRESH_RATE_PER_MINUTE jobs a
  // minute; with d′ it takes JOBS_PER_BUDGETED_CALL times that (most wakes make no call).
  const limiter = new JobLimiter(kind === "dp" ? p.ourPerMinute * JOBS_PER_BUDGETED_CALL : p.ourPerMinute);
  // Whole milliseconds everywhere: Date (what the real functions take) has no fractions.
  const serviceMs = Math.ceil(1000 / p.workerJobsPerSecond);
  let workerScheduled = false;
  let workerNotBefore = 0;
  let now = 0;

  // ── metrics ──
  const series = new Uint16Array(minutes);
  const waitSeries = new Uint16Array(minutes);
  let requests = 0;
  let waited = 0;
  let failedBudget = 0;
  let failedGrant = 0;
  let servedStale = 0;
  let activeUserDays = 0;
  const calls = { inline: 0, keepFresh: 0, keepAlive: 0, idleSweep: 0, deadRefreshToken: 0 };
  let keepFreshLate = 0;
  let keepFreshUnused = 0;
  const delayHist = new Float64Array(HIST_BUCKETS);
  const jobsWithoutCall = { notDue: 0, idle: 0 };
  let lost = 0;
  const lostByDay = new Uint32Array(p.days);
  let atRisk = 0;
  let lostIdleSegment = 0;
  let events = 0;
  let jobsProcessed = 0;
  let limiterClosed = 0;

  const idleSegment = p.segments.findIndex((s) => s.name === "idle");

  function ttl(u: number): number {
    return pop.kind[u] === KIND_OAUTH2 ? p.kinds.oauth2.accessTtlMs : p.kinds.managed.accessTtlMs;
  }

  /** lastUsedAt as the store would have it at `q` (requests of a batch already walked count up to `q`). */
  function luAt(u: number, q: number): number {
    return q >= (ffStart[u] as number) ? Math.min(ffLast[u] as number, q) : (luPrev[u] as number);
  }
  function lastUsedDate(u: number, q: number): Date | null {
    const v = luAt(u, q);
    return Number.isFinite(v) ? D(v) : null;
  }

  function row(u: number, q: number): GrantRow {
    return {
      kind: pop.kind[u] === KIND_OAUTH2 ? "oauth2" : "managed",
      status: status[u] === 0 ? "ACTIVE" : "RECONNECT_REQUIRED",
      accessTokenExpiresAt: D(atExp[u] as number),
      refreshTokenExpiresAt: pop.kind[u] === KIND_OAUTH2 ? D(rtExp[u] as number) : null,
      lastUsedAt: lastUsedDate(u, q),
      nextRefreshAt: D(nra[u] as number),
      lastFailureAt: null, // no faults in the simulation
    };
  }

  function countCall(t: number): void {
    const m = Math.floor(t / MINUTE);
    if (m < minutes) series[m] = Math.min(65535, (series[m] as number) + 1);
  }

  function kickWorker(t: number): void {
    if (workerScheduled) return;
    workerScheduled = true;
    heap.push(Math.max(t, workerNotBefore), -1, EV_WORKER, 0);
  }

  /** BullMQ add with deduplication { id, reschedule: true }: a delayed job is moved (priority kept), a waiting one left. */
  function scheduleJob(u: number, at: number, priority: number, t: number): void {
    const st = jobState[u] as number;
    if (st === JOB_READY) return;
    if (st === JOB_NONE) jobPrio[u] = priority;
    jobGen[u] = ((jobGen[u] as number) + 1) >>> 0;
    jobAt[u] = at;
    if (at <= t) {
      jobState[u] = JOB_READY;
      jobReadyAt[u] = t;
      (levels[levelOf(jobPrio[u] as number)] as JobDeque).pushBack(u, jobGen[u] as number);
      kickWorker(t);
    } else {
      jobState[u] = JOB_DELAYED;
      heap.push(at, u, EV_JOB_DUE, jobGen[u] as number);
    }
  }

  /** jobs/sweep.ts: a row due within two intervals gets a job (or its delayed job moved) at the next tick. */
  function sweepPickup(u: number, t: number): void {
    const st = jobState[u] as number;
    const at = nra[u] as number;
    if (st === JOB_READY || (st === JOB_DELAYED && (jobAt[u] as number) <= at + DUE_SLACK_MS)) return;
    const iv = p.sweepIntervalMs;
    const tick = Math.max(Math.ceil((t + 1) / iv) * iv, Math.ceil((at - 2 * iv) / iv) * iv);
    sweepGen[u] = ((sweepGen[u] as number) + 1) >>> 0;
    heap.push(tick, u, EV_SWEEP, sweepGen[u] as number);
  }

  function jobPriority(u: number, t: number): number {
    if (kind === "d") return priorityFor(lastUsedDate(u, t), D(t));
    if (kind === "dp") return priorityForRow(row(u, t), D(t), policy);
    return PRIORITY.active;
  }

  /** After a new pair is written: the row's next_refresh_at (persist.ts applies the minimum interval). */
  function planAfterRefresh(u: number, t: number): number {
    if (kind === "dp") {
      const plan = planNextRefresh(row(u, t), D(t), policy, srand);
      nra[u] = Math.max(V(plan.at), t + p.minIntervalMs);
      return plan.priority;
    }
    nra[u] = Math.max(V(computeNextRefreshAt(D(atExp[u] as number), D(t), p.leadMs, p.jitterMs, srand)), t + p.minIntervalMs);
    return jobPriority(u, t);
  }

  /** One token call that Cal.com answers. False when the refresh token was already dead (grant lost). */
  function callCalcom(u: number, t: number): boolean {
    if (bgUnused[u] === 2) keepFreshUnused++;
    bgUnused[u] = 0;
    if (pop.kind[u] === KIND_OAUTH2 && (rtExp[u] as number) <= t) {
      status[u] = 1;
      markLost(u, t);
      if (t >= warmEnd) calls.deadRefreshToken++;
      return false;
    }
    atExp[u] = t + ttl(u);
    if (pop.kind[u] === KIND_OAUTH2) rtExp[u] = t + p.kinds.oauth2.refreshTtlMs;
    return true;
  }

  function markLost(u: number, t: number): void {
    if (lostFlag[u]) return;
    lostFlag[u] = 1;
    lost++;
    const day = Math.min(p.days - 1, Math.floor(t / DAY));
    lostByDay[day] = (lostByDay[day] as number) + 1;
    if (pop.segment[u] === idleSegment) lostIdleSegment++;
  }

  function gap(u: number): number {
    const s = ((sessRng[u] as number) + 0x6d2b79f5) >>> 0;
    sessRng[u] = s;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    const r = ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    return Math.max(1, Math.round(-Math.log(1 - r) * p.requestGapMs));
  }

  // ── request paths ──
  function runRequests(u: number, first: number): void {
    reqPending[u] = 0;
    let t = first;
    luPrev[u] = luAt(u, t);
    ffStart[u] = t;
    ffLast[u] = t;
    for (;;) {
      if (t > (sessEnd[u] as number) || t >= endMs) {
        sessNext[u] = t;
        return;
      }
      // Same rule as decideOnDemand's "fresh" (left > bufferMs); the real function decides every other case.
      const fresh = status[u] === 0 && t < (atExp[u] as number) - bufferMs;
      if (!fresh && t > now) {
        sessNext[u] = t;
        reqPending[u] = 1;
        heap.push(t, u, EV_REQ, sessGen[u] as number);
        return;
      }
      if (CHECK && fresh) {
        const d = decideOnDemand({ accessTokenExpiresAt: D(atExp[u] as number), status: "ACTIVE" }, D(t), bufferMs, false);
        if (d.should) throw new Error(`fast-forward disagrees with decideOnDemand for user ${u} at ${t}`);
      }
      const measured = t >= warmEnd;
      if (measured) requests++;
      ffLast[u] = t;
      if (bgUnused[u] !== 0 && fresh && t >= (kfOldExp[u] as number) - bufferMs) bgUnused[u] = 0;
      if (!fresh) {
        const decision = decideOnDemand(
          { accessTokenExpiresAt: D(atExp[u] as number), status: status[u] === 0 ? "ACTIVE" : "RECONNECT_REQUIRED" },
          D(t),
          bufferMs,
          false,
        );
        if (decision.reason === "reconnect_required") {
          if (measured) failedGrant++;
        } else if (decision.should) {
          const ok = kind === "a" ? calcom.take(t) : budget.take(t, "request");
          if (ok) {
            countCall(t);
            if (measured) calls.inline++;
            if (callCalcom(u, t)) {
              if (measured) {
                waited++;
                const m = Math.floor(t / MINUTE);
                waitSeries[m] = Math.min(65535, (waitSeries[m] as number) + 1);
              }
              afterInline(u, t);
            } else if (measured) failedGrant++;
          } else if (isStillValid(D(atExp[u] as number), D(t))) {
            if (measured) servedStale++;
          } else if (measured) failedBudget++;
        }
      }
      t += gap(u);
    }
  }

  function afterInline(u: number, t: number): void {
    if (kind === "a" || kind === "c") return;
    planAfterRefresh(u, t);
    sweepPickup(u, t);
  }

  // ── the worker ──
  function nextJob(): number {
    for (const q of levels) {
      while (q.popFront()) {
        if (jobState[q.u] === JOB_READY && jobGen[q.u] === q.g) return q.u;
      }
    }
    return -1;
  }

  function putBack(u: number): void {
    (levels[levelOf(jobPrio[u] as number)] as JobDeque).pushFront(u, jobGen[u] as number);
  }

  function runWorker(t: number): void {
    workerScheduled = false;
    const u = nextJob();
    if (u < 0) return;
    const reopen = limiter.take(t);
    if (reopen !== null) {
      if (t >= warmEnd) limiterClosed++;
      putBack(u);
      workerNotBefore = reopen;
      kickWorker(t);
      return;
    }
    workerNotBefore = t + serviceMs;
    if (t >= warmEnd) jobsProcessed++;
    const made = processJob(u, t);
    if (made === "refused") {
      putBack(u);
      limiter.pause(t, budget.retryAfterMs);
      workerNotBefore = t + budget.retryAfterMs;
    }
    kickWorker(t);
  }

  /** The processor (jobs/refresh-token.ts) for each strategy. */
  function processJob(u: number, t: number): "call" | "none" | "refused" {
    if (status[u] !== 0) {
      jobState[u] = JOB_NONE;
      return "none";
    }
    let purpose: "keep_fresh" | "keep_alive" | "idle_sweep";
    if (kind === "c") {
      if ((atExp[u] as number) - t > p.readMarginMs) {
        jobState[u] = JOB_NONE;
        jobsWithoutCall.notDue++;
        return "none";
      }
      purpose = "idle_sweep";
    } else if (kind === "dp") {
      const decision = decideScheduled(row(u, t), D(t), policy, srand, DUE_SLACK_MS);
      if (!decision.refresh) {
        jobState[u] = JOB_NONE;
        if (decision.reason === "not_due") {
          jobsWithoutCall.notDue++;
          scheduleJob(u, V(decision.at), decision.priority, t);
        } else {
          jobsWithoutCall.idle++;
          nra[u] = V(decision.plan.at);
          scheduleJob(u, nra[u] as number, decision.plan.priority, t);
        }
        return "none";
      }
      purpose = decision.purpose;
    } else {
      if ((nra[u] as number) > t + DUE_SLACK_MS) {
        jobState[u] = JOB_NONE;
        jobsWithoutCall.notDue++;
        scheduleJob(u, nra[u] as number, jobPriority(u, t), t);
        return "none";
      }
      purpose = "keep_fresh";
    }
    if (!budget.take(t, "background")) return "refused";
    jobState[u] = JOB_NONE;
    countCall(t);
    const measured = t >= warmEnd;
    if (measured) {
      const delaySec = Math.max(0, (t - (jobReadyAt[u] as number)) / 1000);
      const bucket = Math.min(HIST_BUCKETS - 1, Math.floor(Math.log2(1 + delaySec) * 2));
      delayHist[bucket] = (delayHist[bucket] as number) + 1;
    }
    const wasFreshUntil = atExp[u] as number;
    if (measured) {
      if (purpose === "keep_fresh") calls.keepFresh++;
      else if (purpose === "keep_alive") calls.keepAlive++;
      else calls.idleSweep++;
    }
    if (!callCalcom(u, t)) return "call";
    if (purpose === "keep_fresh") {
      if (measured && t > wasFreshUntil - p.onDemandBufferMs) keepFreshLate++;
      // Used if a request path already walked past this moment in the current batch.
      // Useful once a request path comes when the old token would have needed an inline refresh (requests
      // already walked past `t` were fresh under the old token, so they do not count).
      bgUnused[u] = measured ? 2 : 1;
      kfOldExp[u] = wasFreshUntil;
    }
    if (kind !== "c") {
      const prio = planAfterRefresh(u, t);
      scheduleJob(u, nra[u] as number, prio, t);
    }
    return "call";
  }

  // ── days, hours, sessions ──
  const starts = new Float64Array(16);
  function startDay(d: number): void {
    const t = d * DAY;
    for (let u = 0; u < n; u++) {
      const east = (pop.offset[u] as number) > 0;
      generate(u, east ? d + 1 : d, t);
      if (d === 0 && east) generate(u, 0, t);
    }
    if (kind === "c") heap.push(t + p.dailySweepHourUtc * HOUR, -1, EV_CRON, 0);
    if (t + DAY < endMs) heap.push(t + DAY, -1, EV_DAY, d + 1);
  }
  function generate(u: number, localDay: number, t: number): void {
    const count = sessionStarts(p, pop, cdf, u, localDay, starts);
    for (let k = 0; k < count; k++) {
      const s = starts[k] as number;
      if (s >= t && s < endMs) heap.push(s, u, EV_SESSION, localDay * 16 + k);
    }
  }

  function startSession(u: number, t: number, tag: number): void {
    const localDay = tag >>> 4;
    const k = tag & 15;
    const shape = sessionShape(p, u, localDay, k);
    const day = Math.floor(t / DAY);
    if (lastActiveDay[u] !== day) {
      lastActiveDay[u] = day;
      if (day >= p.warmupDays) activeUserDays++;
    }
    if ((sessEnd[u] as number) > t) {
      // Overlaps the running session: extend it (its request stream goes on).
      sessEnd[u] = Math.max(sessEnd[u] as number, t + shape.lengthMs);
      if (!reqPending[u] && (sessNext[u] as number) <= (sessEnd[u] as number) && (sessNext[u] as number) < endMs) {
        reqPending[u] = 1;
        heap.push(sessNext[u] as number, u, EV_REQ, sessGen[u] as number);
      }
      return;
    }
    sessGen[u] = ((sessGen[u] as number) + 1) >>> 0;
    sessEnd[u] = t + shape.lengthMs;
    sessRng[u] = shape.requestSeed;
    runRequests(u, t);
  }

  function hourlyScan(t: number): void {
    const ids = pop.oauth2;
    for (let i = 0; i < ids.length; i++) {
      const u = ids[i] as number;
      if (lostFlag[u]) continue;
      const left = (rtExp[u] as number) - t;
      if (left <= 0) markLost(u, t);
      else if (!alerted[u] && status[u] === 0 && left <= p.refreshTokenAtRiskMs) {
        alerted[u] = 1;
        atRisk++;
      }
    }
    if (t + HOUR < endMs) heap.push(t + HOUR, -1, EV_HOUR, 0);
  }

  function dailyIdleSweep(t: number): void {
    for (let u = 0; u < n; u++) {
      if (status[u] !== 0 || jobState[u] !== JOB_NONE) continue;
      if (luAt(u, t) >= t - p.dailySweepIdleMs) continue;
      jobGen[u] = ((jobGen[u] as number) + 1) >>> 0;
      jobState[u] = JOB_READY;
      jobPrio[u] = PRIORITY.active;
      jobReadyAt[u] = t;
      (levels[levelOf(PRIORITY.active)] as JobDeque).pushBack(u, jobGen[u] as number);
    }
    kickWorker(t);
  }

  // ── initial state (the same for every strategy) ──
  for (let u = 0; u < n; u++) {
    const last = pop.lastRefresh0[u] as number;
    atExp[u] = last + ttl(u);
    rtExp[u] = pop.kind[u] === KIND_OAUTH2 ? last + p.kinds.oauth2.refreshTtlMs : Number.POSITIVE_INFINITY;
    luPrev[u] = pop.lastSeen0[u] as number;
  }
  // Every ACTIVE row of b, d and d′ has a job from the start (as after a deploy with the sweep run).
  if (kind === "b" || kind === "d" || kind === "dp") {
    for (let u = 0; u < n; u++) {
      if (kind === "dp") {
        const plan = planNextRefresh(row(u, 0), D(0), policy, srand);
        nra[u] = V(plan.at);
        scheduleJob(u, nra[u] as number, plan.priority, 0);
      } else {
        nra[u] = V(computeNextRefreshAt(D(atExp[u] as number), D(0), p.leadMs, p.jitterMs, srand));
        scheduleJob(u, nra[u] as number, jobPriority(u, 0), 0);
      }
    }
  }
  heap.push(0, -1, EV_DAY, 0);
  heap.push(0, -1, EV_HOUR, 0);

  // ── the loop ──
  while (heap.pop()) {
    const t = heap.t;
    if (t >= endMs) break;
    now = t;
    events++;
    const u = heap.u;
    switch (heap.ty) {
      case EV_DAY:
        startDay(heap.tg);
        break;
      case EV_SESSION:
        startSession(u, t, heap.tg);
        break;
      case EV_REQ:
        if (heap.tg === sessGen[u] && reqPending[u]) runRequests(u, t);
        break;
      case EV_JOB_DUE:
        if (heap.tg === jobGen[u] && jobState[u] === JOB_DELAYED) {
          jobState[u] = JOB_READY;
          jobReadyAt[u] = t;
          (levels[levelOf(jobPrio[u] as number)] as JobDeque).pushBack(u, jobGen[u] as number);
          kickWorker(t);
        }
        break;
      case EV_WORKER:
        runWorker(t);
        break;
      case EV_SWEEP:
        if (heap.tg === sweepGen[u] && status[u] === 0 && (nra[u] as number) <= t + 2 * p.sweepIntervalMs) {
          scheduleJob(u, nra[u] as number, jobPriority(u, t), t);
        }
        break;
      case EV_HOUR:
        hourlyScan(t);
        break;
      case EV_CRON:
        dailyIdleSweep(t);
        break;
    }
  }
  for (let u = 0; u < n; u++) if (bgUnused[u] === 2 && (atExp[u] as number) < endMs) keepFreshUnused++;

  // ── per-minute figures over the measured window ──
  const first = Math.floor(warmEnd / MINUTE);
  const window = Array.from(series.subarray(first, minutes)).sort((a, b) => a - b);
  const sum = window.reduce((a, b) => a + b, 0);
  const p99 = window[Math.min(window.length - 1, Math.floor(0.99 * (window.length - 1)))] ?? 0;
  let backlog = 0;
  for (const q of levels) backlog += q.size;

  return {
    strategy: spec,
    users: n,
    days: p.days,
    wallMs: performance.now() - wall0,
    events,
    requests,
    waited,
    failedBudget,
    failedGrant,
    servedStale,
    activeUserDays,
    calls,
    perMinute: {
      mean: window.length ? sum / window.length : 0,
      p99,
      max: window.at(-1) ?? 0,
      minutesOver450: window.filter((x) => x > 450).length,
      minutesOver500: window.filter((x) => x > 500).length,
    },
    keepFreshLate,
    keepFreshUnused,
    queueDelayP50s: histQuantile(delayHist, 0.5),
    queueDelayP99s: histQuantile(delayHist, 0.99),
    backlogAtEnd: backlog,
    jobsWithoutCall,
    jobsPerMinute: jobsProcessed / Math.max(1, minutes - first),
    limiterClosed,
    lost,
    atRisk,
    lostIdleSegment,
    lostByDay,
    series,
    waitSeries,
  };
}

/** Upper edge (seconds) of the histogram bucket holding quantile q; buckets are half-powers of two of (1 + s). */
function histQuantile(h: Float64Array, q: number): number {
  const total = h.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    acc += h[i] as number;
    if (acc >= q * total) return 2 ** ((i + 1) / 2) - 1;
  }
  return Number.POSITIVE_INFINITY;
}
