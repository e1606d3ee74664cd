/**
 * Judges a soak. Every token call the fake answered is classified: a rotation that reached us, one that
 * never did (withheld by a fault; undeliverable because the caller was gone: a killed worker, the Cal.com
 * outage, a caller that gave up), or one that reached a worker killed before it was stored; a dead refresh
 * token presented, and whether its rejection reached the caller. Fault windows (windows.ts: each fault plus
 * its recovery allowance; the users a killed worker was refreshing; each user whose rotation was lost, or
 * who received an injected failure answer, until their next stored pair) get every notable request-path
 * event they overlap. Then the pass rule:
 *
 * 1. no managed user lost;
 * 2. an OAuth2 user lost only where Cal.com's rotation never reached us;
 * 3. no dead refresh token presented beyond one per lost rotation (a presentation whose rejection never
 *    reached the caller is allowed its repeat);
 * 4. no request-path wait (nor a rejected token, a failure, or in full runs a slow call) outside a fault window.
 */
import { type Loss, type LossCause, lossOf, NEVER_REACHED, rejectionLost } from "./losses.js";
import type { AuditRow, CallSeen, FinalRow, SoakResult } from "./soak.js";
import type { FaultWindow } from "./timeline.js";
import type { RequestEvent, SoakUser } from "./traffic.js";
import { type Allowances, allowancesFor, attribute, buildWindows, type WindowRow } from "./windows.js";

export type { Allowances, WindowRow } from "./windows.js";
export { allowancesFor } from "./windows.js";
export { type Loss, type LossCause, lossOf, NEVER_REACHED, rejectionLost } from "./losses.js";

export interface LostUser {
  user: string;
  kind: SoakUser["kind"];
  status: FinalRow["status"];
  refreshTokenLive: boolean;
  losses: Loss[];
  /** A rotation of this user that never reached us was measured by the fake. */
  explained: boolean;
  audits: AuditRow[];
  calls: CallSeen[];
}

export interface Repeat {
  user: string;
  /** The presentation whose rejection reached the caller. */
  first: CallSeen;
  /** Token calls for the user between the two presentations (the force-refresh that should have followed, if any). */
  between: CallSeen[];
  /** The same token presented again. */
  again: CallSeen;
}

export interface CauseRow {
  cause: LossCause;
  managed: number;
  oauth2: number;
  /** Of these, users repaired afterwards (a later stored pair, not lost at the end). */
  repaired: number;
  /** Of these, users lost at the end. */
  userLost: number;
}

export interface Distribution {
  users: number;
  mean: number;
  p5: number;
  p50: number;
  p95: number;
  max: number;
}

export interface Rule {
  rule: string;
  ok: boolean;
  detail: string;
}

export interface Analysis {
  windows: FaultWindow[];
  allowances: Allowances;
  usersByKind: { kind: SoakUser["kind"]; total: number; activeLive: number; activeDead: number; reconnect: number; uncertain: number }[];
  lostUsers: LostUser[];
  losses: Loss[];
  causes: CauseRow[];
  rotations: {
    atCalcom: number;
    seenByHook: number;
    stored: number;
    lost: number;
    unaccounted: number;
    unaccountedUsers: string[];
    /** From Cal.com's answer to the start of the worker's write (its audit row), over delivered rotations: p1 and p50. */
    writeStartMs: { p50: number; p99: number };
  };
  deadTokens: {
    presented: number;
    rejectionNotDelivered: number;
    lostRotations: number;
    excess: number;
    excessUsers: string[];
    /** A dead refresh token presented again after its rejection had reached the caller (with what happened in between). */
    repeats: Repeat[];
  };
  /** Two token calls for one user at Cal.com at the same time (single flight broken). */
  concurrent: { user: string; a: CallSeen; b: CallSeen }[];
  requests: {
    total: number;
    ok: number;
    shed: number;
    p50: number;
    p99: number;
    max: number;
    waited: number;
    rejected: number;
    failed: number;
    slow: number;
    byWindow: WindowRow[];
    outside: WindowRow;
    violations: RequestEvent[];
    /** Of the violations, slow calls that overlapped a stall of the soak process itself (annotation only). */
    slowInStall: RequestEvent[];
  };
  refreshesPerLifetime: Map<SoakUser["kind"], Distribution>;
  /** Time between two stored pairs of one user, as a share of the user's token lifetime. */
  refreshIntervals: Map<SoakUser["kind"], { intervals: number; p50: number; p95: number; max: number; overLifetime: number }>;
  rules: Rule[];
  passed: boolean;
  notes: string[];
}

const STORED = new Set(["REFRESHED", "FORCE_REFRESHED", "RECOVERED"]);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function storedTimes(audits: AuditRow[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const a of audits) {
    if (!STORED.has(a.outcome)) continue;
    const list = m.get(a.userUlid) ?? [];
    list.push(a.t);
    m.set(a.userUlid, list);
  }
  for (const list of m.values()) list.sort((x, y) => x - y);
  return m;
}

function distribution(values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return {
    users: sorted.length,
    mean,
    p5: percentile(sorted, 5),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

function groupBy<T>(items: T[], key: (t: T) => string | undefined): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}

export function analyse(r: SoakResult): Analysis {
  const allowances = allowancesFor(r);
  const userOf = new Map(r.users.map((u) => [u.userUlid, u] as const));
  const storedAfter = storedTimes(r.audits);
  const notes: string[] = [];

  // Every rotation and dead refresh token, by what became of its answer.
  const recoveredAfter = (c: CallSeen) =>
    r.audits.some((x) => x.userUlid === c.userUlid && x.outcome === "RECOVERED" && x.t >= c.answered - 100);
  const storedBy = (c: CallSeen, until: number) =>
    (storedAfter.get(c.userUlid ?? "") ?? []).some((t) => t >= c.answered - 100 && t <= until) || recoveredAfter(c);
  // How soon after Cal.com's answer a worker starts writing the pair (the audit row is stamped at the
  // statement's start). A kill sooner than the p99 of these after the answer came while the worker was
  // still doing what every worker does between an answer and its write (reading the response, the
  // event loop's queue): the pair was in flight, as if the answer had not arrived. A kill later than
  // that, with the pair never stored, is a loss the service must answer for.
  const writeStarts: number[] = [];
  for (const c of r.calls) {
    if (c.outcome !== "rotated" || c.delivery !== "delivered" || !c.userUlid) continue;
    const next = (storedAfter.get(c.userUlid) ?? []).find((t) => t >= c.answered - 50);
    if (next !== undefined && next - c.answered < 5_000) writeStarts.push(next - c.answered);
  }
  writeStarts.sort((p, q) => p - q);
  const writeStartMs = { p50: percentile(writeStarts, 50), p99: percentile(writeStarts, 99) };
  const minWriteMs = Math.max(1, Number.isFinite(writeStartMs.p99) ? writeStartMs.p99 : 1);
  const losses: Loss[] = [];
  let rejectionNotDelivered = 0;
  const rejectionsLostByUser = new Map<string, number>();
  for (const c of r.calls) {
    if (c.outcome === "rotated") {
      const cause = lossOf(c, r.faults, storedBy, minWriteMs);
      if (cause) losses.push({ call: c, cause, kind: userOf.get(c.userUlid ?? "")?.kind ?? "unknown" });
    } else if (c.outcome === "deadRefreshToken" && rejectionLost(c, r.faults)) {
      rejectionNotDelivered += 1;
      if (c.userUlid) rejectionsLostByUser.set(c.userUlid, (rejectionsLostByUser.get(c.userUlid) ?? 0) + 1);
    }
  }
  const lossesByUser = groupBy(losses, (l) => l.call.userUlid);
  const callsByUser = groupBy(r.calls, (c) => c.userUlid);
  const auditsByUser = groupBy(r.audits, (a) => a.userUlid);

  // Users at the end.
  const usersByKind = (["managed", "oauth2"] as const).map((kind) => {
    const rows = r.rows.filter((x) => x.kind === kind);
    return {
      kind,
      total: rows.length,
      activeLive: rows.filter((x) => x.status === "ACTIVE" && x.refreshTokenLive).length,
      activeDead: rows.filter((x) => x.status === "ACTIVE" && !x.refreshTokenLive).length,
      reconnect: rows.filter((x) => x.status === "RECONNECT_REQUIRED").length,
      uncertain: rows.filter((x) => x.rotationUncertain).length,
    };
  });
  const lostUsers: LostUser[] = r.rows
    .filter((x) => x.status === "RECONNECT_REQUIRED" || !x.refreshTokenLive)
    .map((x) => {
      const userLosses = lossesByUser.get(x.userUlid) ?? [];
      return {
        user: x.userUlid,
        kind: x.kind,
        status: x.status,
        refreshTokenLive: x.refreshTokenLive,
        losses: userLosses,
        explained: userLosses.some((l) => NEVER_REACHED.has(l.cause)),
        audits: (auditsByUser.get(x.userUlid) ?? []).sort((p, q) => p.t - q.t),
        calls: callsByUser.get(x.userUlid) ?? [],
      };
    });
  const lostSet = new Set(lostUsers.map((u) => u.user));

  const causes = new Map<LossCause, CauseRow>();
  for (const l of losses) {
    const row = causes.get(l.cause) ?? { cause: l.cause, managed: 0, oauth2: 0, repaired: 0, userLost: 0 };
    if (l.kind === "oauth2") row.oauth2 += 1;
    else row.managed += 1;
    const user = l.call.userUlid;
    if (user && lostSet.has(user)) row.userLost += 1;
    else if (user && (storedAfter.get(user) ?? []).some((t) => t > l.call.answered)) row.repaired += 1;
    causes.set(l.cause, row);
  }

  // Accounting, per user: every rotation Cal.com committed is stored (the row's version went up by one) or lost.
  const rotationsByUser = new Map<string, number>();
  for (const c of r.calls)
    if (c.outcome === "rotated" && c.userUlid) rotationsByUser.set(c.userUlid, (rotationsByUser.get(c.userUlid) ?? 0) + 1);
  const unaccountedUsers: string[] = [];
  let unaccounted = 0;
  for (const row of r.rows) {
    const diff = (rotationsByUser.get(row.userUlid) ?? 0) - (row.version - 1) - (lossesByUser.get(row.userUlid)?.length ?? 0);
    if (diff !== 0) {
      unaccounted += diff;
      unaccountedUsers.push(row.userUlid);
    }
  }
  const atCalcom = r.fake.refreshes + r.fake.forceRefreshes + r.fake.oauth2Refreshes;
  const rotations = {
    atCalcom,
    seenByHook: r.calls.filter((c) => c.outcome === "rotated").length,
    stored: r.rows.reduce((s, x) => s + (x.version - 1), 0),
    lost: losses.length,
    unaccounted,
    unaccountedUsers,
    writeStartMs,
  };

  // Dead refresh tokens: one per lost rotation of that user, plus a repeat when the rejection never reached the caller.
  const deadByUser = new Map<string, number>();
  let deadWithoutUser = 0;
  for (const c of r.calls) {
    if (c.outcome !== "deadRefreshToken") continue;
    if (c.userUlid) deadByUser.set(c.userUlid, (deadByUser.get(c.userUlid) ?? 0) + 1);
    else deadWithoutUser += 1;
  }
  let excess = deadWithoutUser;
  const excessUsers: string[] = [];
  for (const [user, n] of deadByUser) {
    const allowed = (lossesByUser.get(user)?.length ?? 0) + (rejectionsLostByUser.get(user) ?? 0);
    if (n > allowed) {
      excess += n - allowed;
      excessUsers.push(user);
    }
  }
  // Where the excess comes from: the same dead token presented again although its rejection reached the
  // caller and nothing was stored in between.
  const repeats: Repeat[] = [];
  for (const user of excessUsers) {
    const list = [...(callsByUser.get(user) ?? [])].sort((p, q) => p.arrived - q.arrived);
    for (let i = 0; i < list.length; i++) {
      const first = list[i] as CallSeen;
      if (first.outcome !== "deadRefreshToken" || rejectionLost(first, r.faults)) continue;
      const between: CallSeen[] = [];
      for (let j = i + 1; j < list.length; j++) {
        const c = list[j] as CallSeen;
        if (c.outcome === "rotated") break;
        if (c.outcome === "deadRefreshToken") {
          repeats.push({ user, first, between, again: c });
          break;
        }
        between.push(c);
      }
    }
  }
  const deadTokens = {
    presented: r.fake.deadRefreshTokenUses,
    rejectionNotDelivered,
    lostRotations: losses.length,
    excess,
    excessUsers,
    repeats,
  };

  // Single flight, as Cal.com sees it: two calls for one user overlapping in time.
  const concurrent: Analysis["concurrent"] = [];
  for (const [user, list] of callsByUser) {
    const sorted = [...list].sort((p, q) => p.arrived - q.arrived);
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1] as CallSeen;
      const b = sorted[i] as CallSeen;
      if (b.arrived < a.answered) concurrent.push({ user, a, b });
    }
  }

  // Request path, attributed to windows.
  const timeline = buildWindows(r, allowances, losses, storedAfter);
  const { windows, byWindow, outside, violations, slowInStall } = attribute(r, timeline);
  const moduleSorted = [...r.traffic.moduleMs].sort((a, b) => a - b);
  const notable = r.traffic.notable;
  const requests = {
    total: r.traffic.requests,
    ok: r.traffic.ok,
    shed: r.traffic.shed,
    p50: percentile(moduleSorted, 50),
    p99: percentile(moduleSorted, 99),
    max: moduleSorted[moduleSorted.length - 1] ?? Number.NaN,
    waited: notable.filter((e) => e.waitedOnRefresh).length,
    rejected: notable.filter((e) => e.rejectedStatus !== undefined).length,
    failed: notable.filter((e) => e.failure !== undefined).length,
    slow: notable.filter((e) => e.slow).length,
    byWindow,
    outside,
    violations,
    slowInStall,
  };

  // Refreshes per user per token lifetime (users lost excluded).
  const refreshesPerLifetime = new Map<SoakUser["kind"], Distribution>();
  const refreshIntervals: Analysis["refreshIntervals"] = new Map();
  for (const kind of ["managed", "oauth2"] as const) {
    const values: number[] = [];
    const gaps: number[] = [];
    for (const u of r.users) {
      if (u.kind !== kind || lostSet.has(u.userUlid)) continue;
      const times = (storedAfter.get(u.userUlid) ?? []).filter((t) => t >= 0 && t <= r.trafficMs);
      values.push(times.length / (r.trafficMs / u.ttlMs));
      for (let i = 1; i < times.length; i++) gaps.push(((times[i] as number) - (times[i - 1] as number)) / u.ttlMs);
    }
    refreshesPerLifetime.set(kind, distribution(values));
    const sorted = gaps.sort((a, b) => a - b);
    refreshIntervals.set(kind, {
      intervals: sorted.length,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      max: sorted[sorted.length - 1] ?? Number.NaN,
      overLifetime: sorted.filter((g) => g > 1).length,
    });
  }

  const managedLost = lostUsers.filter((u) => u.kind === "managed");
  const oauthLost = lostUsers.filter((u) => u.kind === "oauth2");
  const unexplained = oauthLost.filter((u) => !u.explained);
  const violationKinds = [
    `${violations.filter((e) => e.waitedOnRefresh).length} waited on a refresh`,
    `${violations.filter((e) => e.rejectedStatus !== undefined).length} met a rejected token`,
    `${violations.filter((e) => e.failure !== undefined).length} failed`,
    r.options.slowCountsAsViolation ? `${violations.filter((e) => e.slow).length} slower than ${r.options.slowMs} ms` : null,
  ].filter(Boolean);
  const rules: Rule[] = [
    {
      rule: "no managed user lost",
      ok: managedLost.length === 0,
      detail: `${managedLost.length} of ${usersByKind[0]?.total ?? 0} managed users lost (RECONNECT_REQUIRED, or a stored refresh token Cal.com no longer holds)`,
    },
    {
      rule: "an OAuth2 user lost only where Cal.com's rotation never reached us",
      ok: unexplained.length === 0,
      detail: `${oauthLost.length} OAuth2 users lost, ${oauthLost.length - unexplained.length} of them after a rotation that never reached us; ${unexplained.length} without one`,
    },
    {
      rule: "no dead refresh token presented beyond one per lost rotation",
      ok: excess === 0,
      detail:
        `${deadTokens.presented} dead refresh tokens presented for ${losses.length} lost rotations` +
        ` (${rejectionNotDelivered} of the presentations got a rejection that never reached the caller, which then presented it again); ${excess} beyond that`,
    },
    {
      rule: `no request-path wait outside a fault window${r.options.slowCountsAsViolation ? "" : " (timings not judged in this variant)"}`,
      ok: violations.length === 0,
      detail: `${violations.length} outside every window: ${violationKinds.join(", ")}`,
    },
  ];
  // A failure answer's window runs to the end of traffic when its user never stored a pair again: fair for a
  // user lost afterwards (a lost rotation explains it), suspicious for anyone else.
  const neverRepaired = [
    ...new Set(windows.filter((w) => w.kind === "failed-answer" && w.unrepaired).flatMap((w) => [...(w.users ?? [])])),
  ].filter((u) => !lostSet.has(u));
  if (neverRepaired.length > 0) {
    notes.push(
      `${neverRepaired.length} user(s) received an injected failure answer and never stored a pair afterwards, yet are not lost (${neverRepaired.slice(0, 5).join(", ")}${neverRepaired.length > 5 ? ", …" : ""}): their windows run to the end of traffic.`,
    );
  }
  if (unaccounted !== 0) {
    notes.push(
      `${unaccounted} rotation(s) Cal.com committed are neither stored nor measured lost (users: ${unaccountedUsers.slice(0, 5).join(", ")}${unaccountedUsers.length > 5 ? ", …" : ""}).`,
    );
  }
  if (rotations.seenByHook !== atCalcom)
    notes.push(`the fake committed ${atCalcom} rotations but reported ${rotations.seenByHook} calls that rotated.`);
  if (concurrent.length > 0) notes.push(`${concurrent.length} pair(s) of token calls for one user overlapped at Cal.com (single flight).`);
  if (r.unexpectedExits.length > 0) notes.push(`${r.unexpectedExits.length} worker exit(s) nobody asked for (see Worker processes).`);
  if ((r.heldPairsAtEnd ?? 0) > 0) notes.push(`${r.heldPairsAtEnd} held pair(s) still in Redis at the end.`);
  if (r.traffic.shed > 0) notes.push(`${r.traffic.shed} request(s) not started: too many in flight (the soak process could not keep up).`);
  if (r.secretScan && r.secretScan.leaked > 0) notes.push(`secret scan: ${r.secretScan.leaked} issued token(s) found in the logs.`);
  if (r.sourcesChanged && r.sourcesChanged.length > 0) {
    notes.push(
      `the sources changed during the run (${r.sourcesChanged.slice(0, 5).join(", ")}${r.sourcesChanged.length > 5 ? ", …" : ""}): workers restarted after that ran other code; the run does not judge one version.`,
    );
  }
  return {
    windows,
    allowances,
    usersByKind,
    lostUsers,
    losses,
    causes: [...causes.values()].sort((p, q) => p.cause.localeCompare(q.cause)),
    rotations,
    deadTokens,
    concurrent,
    requests,
    refreshesPerLifetime,
    refreshIntervals,
    rules,
    passed: rules.every((x) => x.ok),
    notes,
  };
}
