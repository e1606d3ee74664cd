/** The soak's Markdown report (stdout, and a file). */
import type { Analysis, WindowRow } from "./analyse.js";
import type { AuditRow, CallSeen, SoakResult } from "./soak.js";

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const n = (v: number) => v.toLocaleString("en-US");
const ms = (v: number) => (Number.isFinite(v) ? `${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)} ms` : "n/a");
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "n/a");

function failedText(m: Map<string, number>): string {
  if (m.size === 0) return "0";
  const total = [...m.values()].reduce((s, v) => s + v, 0);
  const parts = [...m.entries()].sort((a, b) => b[1] - a[1]).map(([code, c]) => `${code} ${c}`);
  return `${total} (${parts.join(", ")})`;
}

function windowRow(w: WindowRow): string {
  return `| ${w.label} | ${w.span} | ${w.requests === null ? "—" : n(w.requests)} | ${w.waited} | ${w.rejected} | ${failedText(w.failed)} | ${w.slow} |`;
}

function callText(c: CallSeen): string {
  const closed = c.closed !== undefined ? ` closed ${sec(c.closed)}` : "";
  return `${sec(c.arrived)}→${sec(c.answered)} ${c.route} ${c.outcome} ${c.delivery}${c.fault ? ` (${c.fault})` : ""}${closed}`;
}

function auditText(x: AuditRow): string {
  return `${sec(x.t)} ${x.outcome}/${x.trigger}${x.errorCode ? `/${x.errorCode}` : ""}`;
}

/** The refresh queue's runnable backlog (waiting + prioritized) over the traffic, from the per-second samples. */
function backlogText(r: SoakResult): string {
  const samples = r.queueSamples ?? [];
  if (samples.length === 0) return "";
  const runnable = samples.map((x) => ({ t: x.t, n: x.waiting + x.prioritized }));
  const peak = runnable.reduce((m, x) => (x.n > m.n ? x : m));
  const over = runnable.filter((x) => x.n > 100).length;
  return ` During the traffic (${samples.length} one-second samples), runnable jobs (waiting + prioritized) peaked at ${n(peak.n)} at ${sec(peak.t)}; more than 100 were runnable in ${over} of the samples.`;
}

export function renderReport(r: SoakResult, a: Analysis): string {
  const o = r.options;
  const out: string[] = [];
  const line = (s = "") => out.push(s);
  const kills = r.faults.filter((f) => f.kind === "worker-kill");

  line(`# Chaos soak report${o.short ? " (short variant)" : ""}`);
  line();
  line(
    `${r.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC · ${n(o.users)} users (${n(a.usersByKind[0]?.total ?? 0)} managed, ${n(a.usersByKind[1]?.total ?? 0)} OAuth2) · ` +
      `tokens of ${o.ttlSeconds[0]}–${o.ttlSeconds[1]} s, each user making one request right after connecting · ${sec(r.trafficMs)} of traffic at ${o.requestsPerSecond} requests/s over random users · two worker processes · ` +
      `setup ${sec(r.setupMs)}, whole run ${sec(r.totalMs)}`,
  );
  line();
  line(
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${r.machine.postgres}; load average ${r.machine.loadStart.toFixed(2)} at the start, ` +
      `${r.machine.loadEnd.toFixed(2)} at the end; the soak process's event-loop delay p50 ${r.eventLoopDelayMs.p50} ms, p99 ${r.eventLoopDelayMs.p99} ms, max ${r.eventLoopDelayMs.max} ms.`,
  );
  line();
  line(`**Result: ${a.passed ? "PASS" : "FAIL"}** (the pass rule is at the end).`);
  if (r.sourcesChanged && r.sourcesChanged.length > 0) {
    line();
    line(
      `**Warning:** ${r.sourcesChanged.length} source file(s) changed while this run was going (${r.sourcesChanged.slice(0, 8).join(", ")}${r.sourcesChanged.length > 8 ? ", …" : ""}). Workers restarted after a change ran the new code: this run does not judge one version of the service.`,
    );
  }
  line();

  line("## Fault timeline");
  line();
  line(
    `Continuous from ${sec(r.plan.continuous.from)} to ${sec(r.plan.continuous.until)}: ${Math.round(o.errorRate * 100)} % of token calls answered 5xx before anything rotated ` +
      `(${n(r.injected.fiveXx)} injected: 500, 503 or a proxy's 502 page; ${n(a.windows.filter((w) => w.kind === "failed-answer").length)} injected failure answers, 429s included, reached a caller and opened a window for that user) ` +
      `and ${Math.round(o.dropRate * 100)} % dropped after the rotation committed ` +
      `(${n(r.injected.drops)} queued; the fake counts the ones that really dropped a rotation), Cal.com answering every token call after ${o.calcomLatencyMs} ms. ` +
      `Quiet tail from ${sec(r.plan.faultPhaseEnd)}: no fault at all.`,
  );
  line();
  line("| start | fault over | window ends | fault | affected |");
  line("|---|---|---|---|---|");
  const windowEnd = new Map<string, number>();
  for (const w of a.windows) if (w.kind !== "lost-rotation" && w.kind !== "failed-answer") windowEnd.set(`${w.kind}@${w.start}`, w.end);
  for (const f of r.faults) {
    const end = windowEnd.get(`${f.kind}@${f.start}`);
    const affected = f.kind === "worker-kill" ? (f.users ? `${f.users.length} users with a running job` : "everyone") : "everyone";
    line(`| ${sec(f.start)} | ${sec(f.faultEnd)} | ${end === undefined ? "" : sec(end)} | ${f.kind}: ${f.detail} | ${affected} |`);
  }
  line();
  line("Recovery allowance (how long after a fault its effects may last by design; a window is the fault plus its allowance):");
  line();
  for (const l of a.allowances.lines) line(`- ${l.kind}: ${l.text}`);
  line();

  line("## Users at the end");
  line();
  line(
    "| kind | users | ACTIVE, refresh token live at Cal.com | ACTIVE, refresh token dead | RECONNECT_REQUIRED | rotation_uncertain set |",
  );
  line("|---|---|---|---|---|---|");
  for (const k of a.usersByKind)
    line(`| ${k.kind} | ${n(k.total)} | ${n(k.activeLive)} | ${k.activeDead} | ${k.reconnect} | ${k.uncertain} |`);
  line();
  line(
    `Held pairs still in Redis: ${r.heldPairsAtEnd ?? "unknown"}. Refresh queue at the end: ${
      r.queueAtEnd
        ? Object.entries(r.queueAtEnd)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")
        : "unknown"
    }.${backlogText(r)}`,
  );
  line();

  line("## Rotations lost, by cause");
  line();
  line(
    "Measured by the fake Cal.com, which reports every token call and what became of its answer: withheld by a fault (dropped after the rotation committed), " +
      "undeliverable (the caller's connection was already closed when Cal.com answered: a killed worker, the Cal.com outage, a caller that had given up), " +
      "or written to a worker that was killed right after and never stored it.",
  );
  line();
  line("| cause | managed | OAuth2 | user repaired afterwards | user lost |");
  line("|---|---|---|---|---|");
  for (const c of a.causes) line(`| ${c.cause} | ${c.managed} | ${c.oauth2} | ${c.repaired} | ${c.userLost} |`);
  const sum = (f: (c: Analysis["causes"][number]) => number) => a.causes.reduce((t, c) => t + f(c), 0);
  line(`| **all** | ${sum((c) => c.managed)} | ${sum((c) => c.oauth2)} | ${sum((c) => c.repaired)} | ${sum((c) => c.userLost)} |`);
  line();
  line(
    `Fake counters: ${r.fake.rotationsDroppedByFault} rotations dropped by a fault, ${r.fake.rotationsUndeliverable} undeliverable. ` +
      `Accounting, user by user: Cal.com committed ${n(a.rotations.atCalcom)} rotations; ${n(a.rotations.stored)} were stored ` +
      `(each stored pair raises the row's version by one), ${a.rotations.lost} lost as above, ${a.rotations.unaccounted} unaccounted` +
      `${a.rotations.unaccountedUsers.length > 0 ? ` (users ${a.rotations.unaccountedUsers.slice(0, 5).join(", ")})` : ""}. ` +
      `A worker starts writing a pair ${ms(a.rotations.writeStartMs.p50)} after Cal.com's answer at p50, ${ms(a.rotations.writeStartMs.p99)} at p99; ` +
      "an answer whose worker was killed sooner than the p99 after it was still in flight (the worker was reading it or had it queued behind other work), so it counts as in flight on the killed worker; a kill later than that, with the pair never stored, is a loss.",
  );
  line();

  line("## Dead refresh tokens presented");
  line();
  line(
    `${a.deadTokens.presented} dead refresh tokens presented to Cal.com for ${a.deadTokens.lostRotations} lost rotations. ` +
      `${a.deadTokens.rejectionNotDelivered} of those presentations were answered with a rejection that never reached the caller (killed, cut off), so the same token was presented again later. ` +
      `Beyond one per lost rotation and one per lost rejection: ${a.deadTokens.excess}${a.deadTokens.excessUsers.length > 0 ? ` (users ${a.deadTokens.excessUsers.slice(0, 5).join(", ")})` : ""}. ` +
      `Cal.com also saw ${r.fake.forceRefreshes} force-refreshes (managed users recovering a lost rotation) and ${r.fake.unknownRefreshTokenUses} unknown refresh tokens.`,
  );
  line();
  if (a.deadTokens.repeats.length > 0) {
    line(
      `The excess, call by call: ${a.deadTokens.repeats.length} time(s) a dead refresh token was presented again although Cal.com's rejection of it had reached the caller and no pair was stored in between (at most 5 shown, then their audit rows):`,
    );
    line();
    for (const rep of a.deadTokens.repeats.slice(0, 5)) {
      const between = rep.between.length > 0 ? rep.between.map(callText).join("; ") : "no token call";
      line(
        `- **${rep.user}** (${r.users.find((x) => x.userUlid === rep.user)?.kind ?? "?"}): ${callText(rep.first)}; then ${between}; then again ${callText(rep.again)}`,
      );
      line(
        `  - audit: ${
          r.audits
            .filter((x) => x.userUlid === rep.user)
            .sort((p, q) => p.t - q.t)
            .map(auditText)
            .join("; ") || "none"
        }`,
      );
    }
    line();
  }
  if (a.concurrent.length > 0) {
    line(`Single flight: ${a.concurrent.length} pair(s) of token calls for one user overlapped at Cal.com:`);
    line();
    for (const c of a.concurrent.slice(0, 10)) line(`- ${c.user}: ${callText(c.a)} / ${callText(c.b)}`);
    line();
  } else {
    line("Single flight, as Cal.com saw it: no two token calls for one user overlapped.");
    line();
  }

  line("## Request path");
  line();
  const q = a.requests;
  line(
    `${n(q.total)} requests (${n(q.ok)} ended 200), ${q.shed} not started. Time in the module (ensureValidCalToken + handleCalApiResponse without the replayed call): ` +
      `p50 ${ms(q.p50)}, p99 ${ms(q.p99)}, max ${ms(q.max)}. ${q.waited} waited on a refresh, ${q.rejected} met a rejected token (498 / 401) on the first call, ` +
      `${q.failed} failed, ${q.slow} spent more than ${o.slowMs} ms in the module.` +
      (Object.keys(r.traffic.servedWithError).length > 0
        ? ` Served a still-valid token with the refresh's error attached: ${failedText(new Map(Object.entries(r.traffic.servedWithError)))}.`
        : ""),
  );
  line();
  if ((r.stalls ?? []).length > 0) {
    line(
      `The soak process itself (the web app of this run: the fake Cal.com, the request loop, the client) stalled ${r.stalls.length} time(s) for more than 150 ms: ` +
        `${r.stalls
          .slice(0, 10)
          .map((s) => `${sec(s.t)} (${Math.round(s.ms)} ms)`)
          .join(", ")}${r.stalls.length > 10 ? ", …" : ""}. ` +
        `${q.slowInStall.length} of the slow calls outside every window overlapped such a stall: they waited on their host process (blocked by GC, the disk or CPU starvation, or by the module itself), and still count.`,
    );
    line();
  }
  line("Each event is counted in every window it overlaps (overlapping windows share events).");
  line();
  line(`| window | span | requests | waited on a refresh | 498 / 401 | failed | > ${o.slowMs} ms |`);
  line("|---|---|---|---|---|---|---|");
  for (const w of q.byWindow) line(windowRow(w));
  line(windowRow(q.outside));
  line();
  if (q.violations.length > 0) {
    line(`Outside every window (${q.violations.length}; the first 20):`);
    line();
    line("| at | user | kind | module time | waited | first call | failure | soak process stalled |");
    line("|---|---|---|---|---|---|---|---|");
    for (const e of q.violations.slice(0, 20)) {
      line(
        `| ${sec(e.start)} | ${e.user} | ${e.kind} | ${ms(e.moduleMs)} | ${e.waitedOnRefresh ? "yes" : ""} | ${e.rejectedStatus ?? ""} | ${e.failure ?? ""} | ${q.slowInStall.includes(e) ? "yes" : ""} |`,
      );
    }
    line();
  }

  line("## Refreshes per user per token lifetime");
  line();
  line(
    "Stored pairs per user during the traffic, divided by the number of the user's token lifetimes in it (users lost excluded). " +
      "The worker refreshes when 30–50 % of a lifetime is left, so a steady state is 1.4–2.0 per lifetime (a user's first refresh comes at 50–70 % of " +
      "the first lifetime, and a short run counts whole refreshes, so short runs read lower). The time between two stored pairs shows the same from the other side: " +
      "0.5–0.7 of a lifetime by design, more than 1 when a token outlived its refresh (the request path then refreshes inline).",
  );
  line();
  line("| kind | users | per lifetime: mean | p5 | p50 | p95 | max | interval ÷ lifetime: p50 | p95 | max | intervals > 1 lifetime |");
  line("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const [kind, label] of [
    ["managed", "managed"],
    ["oauth2", "OAuth2"],
  ] as const) {
    const d = a.refreshesPerLifetime.get(kind);
    const g = a.refreshIntervals.get(kind);
    line(
      `| ${label} | ${d?.users ?? 0} | ${f2(d?.mean ?? Number.NaN)} | ${f2(d?.p5 ?? Number.NaN)} | ${f2(d?.p50 ?? Number.NaN)} | ${f2(d?.p95 ?? Number.NaN)} | ${f2(d?.max ?? Number.NaN)} | ` +
        `${f2(g?.p50 ?? Number.NaN)} | ${f2(g?.p95 ?? Number.NaN)} | ${f2(g?.max ?? Number.NaN)} | ${g?.overLifetime ?? 0} of ${n(g?.intervals ?? 0)} |`,
    );
  }
  line();

  line("## Cal.com's view");
  line();
  const c = r.fake.calls;
  line(
    `Calls: managed refresh ${n(c["managed.refresh"] ?? 0)}, force-refresh ${n(c["managed.forceRefresh"] ?? 0)}, OAuth2 token ${n(c["oauth2.token"] ?? 0)}, ` +
      `GET /v2/me ${n(c.me ?? 0)}. Rotations: ${n(r.fake.refreshes)} managed, ${n(r.fake.oauth2Refreshes)} OAuth2, ${n(r.fake.forceRefreshes)} forced. ` +
      `Answers: ${r.fake.status429} × 429, ${r.fake.status498} × 498, ${r.fake.status401} × 401.`,
  );
  line();
  const breakdown = new Map<string, number>();
  for (const c of r.calls) breakdown.set(`${c.outcome} ${c.delivery}`, (breakdown.get(`${c.outcome} ${c.delivery}`) ?? 0) + 1);
  line(
    `Token calls by what they did and what became of the answer: ${[...breakdown.entries()]
      .sort((p, q) => q[1] - p[1])
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(", ")} (closedAfter: the caller's connection closed within a second of the answer).`,
  );
  line();

  line("## Worker processes");
  line();
  const starts = [...r.workerStartMs].sort((x, y) => x - y);
  line(
    `${kills.length} kill -9 (restarted at once; spawn to "worker started" p50 ${sec(starts[Math.floor(starts.length / 2)] ?? 0)}, max ${sec(starts[starts.length - 1] ?? 0)}), ` +
      `${r.unexpectedExits.length} exits nobody asked for.`,
  );
  for (const e of r.unexpectedExits) {
    line();
    line(`- worker ${e.slot} (pid ${e.pid}) exited at ${sec(e.at - r.t0)} with code ${e.code}, signal ${e.signal}; last lines:`);
    line();
    line("```");
    line(e.tail);
    line("```");
  }
  line();

  if (a.lostUsers.length > 0) {
    line("## Users lost, with evidence");
    line();
    const explained = a.lostUsers.filter((u) => u.kind === "oauth2" && u.explained);
    const suspect = a.lostUsers.filter((u) => u.kind === "managed" || !u.explained);
    const shown = [...suspect.slice(0, 10), ...explained.slice(0, 3)];
    line(
      `${a.lostUsers.length} users, ${explained.length} of them OAuth2 users after a rotation that never reached us (Cal.com offers no way back from that). ` +
        `Managed users and unexplained losses first (${suspect.length}, at most 10 shown), then ${Math.min(3, explained.length)} of the explained ones. ` +
        "Each user's token calls at Cal.com, then their audit rows (times from the start of traffic).",
    );
    for (const u of shown) {
      line();
      line(`- **${u.user}** (${u.kind}) ${u.status}, stored refresh token ${u.refreshTokenLive ? "live" : "dead"} at Cal.com`);
      for (const l of u.losses) {
        line(`  - lost at ${sec(l.call.answered)}: ${l.cause}`);
        if (l.cause !== "reached a worker that was killed before storing it") continue;
        const kill = r.faults.find(
          (f) => f.kind === "worker-kill" && f.calcomPorts?.includes(l.call.port ?? -1) && f.start >= l.call.arrived,
        );
        if (!kill) continue;
        line(
          `  - answered ${Math.round(kill.start - l.call.answered)} ms before kill -9 of ${kill.detail.split(";")[0]?.replace("kill -9 ", "")}; its last log lines:`,
        );
        for (const [t, msg, who] of (kill.lastLines ?? []).filter(([t]) => t >= l.call.answered - 2_000)) {
          line(`    - ${(t / 1000).toFixed(3)} s ${msg}${who ? ` ${who}` : ""}`);
        }
      }
      line(`  - calls: ${u.calls.map(callText).join("; ") || "none"}`);
      line(`  - audit: ${u.audits.map(auditText).join("; ") || "none"}`);
    }
    line();
  }

  if (r.secretScan) {
    line(
      `Secret scan: ${n(r.secretScan.tokens)} tokens the fake issued, searched for in ${n(r.secretScan.logBytes)} bytes of logs: ${r.secretScan.leaked} found.`,
    );
    line();
  }

  line("## Settings");
  line();
  line(
    Object.entries(r.settings)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(", "),
  );
  line();

  line("## Pass rule");
  line();
  for (const rule of a.rules) line(`- ${rule.ok ? "✔" : "✘"} ${rule.rule}: ${rule.detail}`);
  for (const note of a.notes) line(`- note: ${note}`);
  line();
  line(`**${a.passed ? "PASS" : "FAIL"}**`);
  return `${out.join("\n")}\n`;
}
