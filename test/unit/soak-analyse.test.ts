/**
 * The chaos soak's judge (scripts/soak/analyse.ts) on hand-made runs: how a token call's fate is
 * classified (withheld, undeliverable on a killed worker by its port, reached a worker killed before
 * storing), the four parts of the pass rule, and the per-user window an injected failure answer opens.
 */
import { analyse, lossOf } from "../../scripts/soak/analyse.js";
import { defaultOptions } from "../../scripts/soak/options.js";
import type { AuditRow, CallSeen, ExecutedFault, FinalRow, SoakResult } from "../../scripts/soak/soak.js";
import type { RequestEvent, SoakUser } from "../../scripts/soak/traffic.js";
import type { FakeStats } from "../fakes/calcom/index.js";

const M = "01M8GRS6WZD2RBD9N3MX8E9BA8";
const O = "01M8GRS4KMRKQXCVXGBEJ5S2J0";

const kill = (start: number, calcomPorts: number[], users: string[] = []): ExecutedFault => ({
  kind: "worker-kill",
  start,
  faultEnd: start + 1_500,
  detail: "kill -9",
  users,
  calcomPorts,
});

function call(over: Partial<CallSeen>): CallSeen {
  return { route: "managed.refresh", outcome: "rotated", delivery: "delivered", arrived: 0, answered: 150, port: 40_000, ...over };
}

function stats(over: Partial<FakeStats> = {}): FakeStats {
  return {
    calls: {},
    refreshes: 0,
    forceRefreshes: 0,
    oauth2Refreshes: 0,
    codeExchanges: 0,
    rejectedCodes: 0,
    deadRefreshTokenUses: 0,
    unknownRefreshTokenUses: 0,
    rotationsDroppedByFault: 0,
    rotationsUndeliverable: 0,
    status498: 0,
    status401: 0,
    status429: 0,
    routeNotFound: 0,
    ...over,
  };
}

function run(over: Partial<SoakResult>): SoakResult {
  const options = defaultOptions(false);
  const users: SoakUser[] = [
    { userUlid: M, kind: "managed", calUserId: 1001, ttlMs: 60_000 },
    { userUlid: O, kind: "oauth2", calUserId: 1002, ttlMs: 60_000 },
  ];
  return {
    options,
    plan: { continuous: { from: 0, until: 0, errorRate: 0, dropRate: 0 }, faults: [], faultPhaseEnd: 0, trafficMs: 120_000 },
    settings: { CAL_HTTP_TIMEOUT_MS: "3000", REFRESH_LEASE_SECONDS: "3", SWEEP_INTERVAL_SECONDS: "5" },
    startedAt: new Date(0),
    t0: 0,
    setupMs: 0,
    trafficMs: 120_000,
    totalMs: 0,
    machine: { cores: 2, cpu: "", node: "", postgres: "", loadStart: 0, loadEnd: 0 },
    users,
    faults: [],
    kills: [],
    unexpectedExits: [],
    workerStartMs: [],
    calls: [],
    traffic: { requests: 0, ok: 0, shed: 0, moduleMs: [], notable: [], servedWithError: {}, perSecond: [] },
    injected: { fiveXx: 0, drops: 0 },
    rows: [],
    audits: [],
    fake: stats(),
    heldPairsAtEnd: 0,
    queueAtEnd: null,
    eventLoopDelayMs: { p50: 0, p99: 0, max: 0 },
    stalls: [],
    logDir: "",
    resources: { database: "", redisUrl: "", pids: [] },
    ...over,
  };
}

const row = (userUlid: string, kind: FinalRow["kind"], over: Partial<FinalRow> = {}): FinalRow => ({
  userUlid,
  kind,
  status: "ACTIVE",
  version: 1,
  rotationUncertain: false,
  failureCount: 0,
  lastFailureCode: null,
  refreshTokenLive: true,
  ...over,
});
const audit = (userUlid: string, outcome: string, t: number): AuditRow => ({ userUlid, outcome, trigger: "worker", errorCode: null, t });

describe("lossOf", () => {
  const never = () => false;
  it("a withheld answer is the fault's", () => {
    expect(lossOf(call({ delivery: "withheld", fault: "dropAfterCommit" }), [], never)).toBe("dropped by the fault (never reached us)");
  });
  it("an undeliverable answer is the killed worker's when the worker held the call's port, else the outage's or a caller that gave up", () => {
    const gone = call({ delivery: "gone", arrived: 1_000, answered: 1_150, port: 41_000 });
    expect(lossOf(gone, [kill(1_100, [41_000])], never)).toBe("undeliverable: in flight on a killed worker");
    expect(lossOf(gone, [kill(1_100, [42_000])], never)).toBe("undeliverable: the caller had given up");
    const cut: ExecutedFault = { kind: "calcom-unreachable", start: 1_100, faultEnd: 16_100, detail: "" };
    expect(lossOf(gone, [cut], never)).toBe("undeliverable: in flight when Cal.com became unreachable");
  });
  it("an answer whose connection closed right after: killed before the answer, after it (stored or not), or nobody killed", () => {
    const closed = call({ delivery: "closedAfter", arrived: 1_000, answered: 1_150, closed: 1_200, port: 41_000 });
    expect(lossOf(closed, [kill(1_100, [41_000])], never)).toBe("undeliverable: in flight on a killed worker");
    expect(lossOf(closed, [kill(1_180, [41_000])], never)).toBe("reached a worker that was killed before storing it");
    expect(lossOf(closed, [kill(1_180, [41_000])], () => true)).toBeNull();
    expect(lossOf(closed, [kill(1_180, [42_000])], never)).toBeNull();
    expect(lossOf(closed, [], never)).toBeNull();
  });
});

describe("analyse: the pass rule", () => {
  /** M: a rotation dropped by the fault, its dead token presented once, force-refreshed. O: a rotation lost on a killed worker, then reconnect. */
  function clean(): SoakResult {
    return run({
      faults: [kill(30_000, [41_000], [O])],
      calls: [
        call({ userUlid: M, arrived: 10_000, answered: 10_150, delivery: "withheld", fault: "dropAfterCommit" }),
        call({ userUlid: M, arrived: 14_000, answered: 14_150, outcome: "deadRefreshToken" }),
        call({ userUlid: M, route: "managed.forceRefresh", arrived: 14_200, answered: 14_350 }),
        call({ userUlid: O, route: "oauth2.token", arrived: 29_950, answered: 30_100, delivery: "gone", port: 41_000 }),
        call({ userUlid: O, route: "oauth2.token", arrived: 45_000, answered: 45_150, outcome: "deadRefreshToken", port: 43_000 }),
      ],
      rows: [row(M, "managed", { version: 2 }), row(O, "oauth2", { status: "RECONNECT_REQUIRED", refreshTokenLive: false })],
      audits: [audit(M, "FAILED_TRANSIENT", 10_160), audit(M, "FORCE_REFRESHED", 14_360), audit(O, "RECONNECT_REQUIRED", 45_160)],
      fake: stats({ refreshes: 1, forceRefreshes: 1, oauth2Refreshes: 1, deadRefreshTokenUses: 2 }),
    });
  }

  it("passes a run whose only losses never reached us", () => {
    const a = analyse(clean());
    expect(a.rules.map((r) => [r.rule, r.ok])).toEqual([
      ["no managed user lost", true],
      ["an OAuth2 user lost only where Cal.com's rotation never reached us", true],
      ["no dead refresh token presented beyond one per lost rotation", true],
      ["no request-path wait outside a fault window", true],
    ]);
    expect(a.rotations).toMatchObject({ atCalcom: 3, stored: 1, lost: 2, unaccounted: 0 });
    expect(a.causes.map((c) => [c.cause, c.managed, c.oauth2])).toEqual([
      ["dropped by the fault (never reached us)", 1, 0],
      ["undeliverable: in flight on a killed worker", 0, 1],
    ]);
  });

  it("a dead refresh token presented again after a delivered rejection is beyond the allowance; after a masked one it is not", () => {
    const r = clean();
    r.calls.splice(2, 0, call({ userUlid: M, arrived: 20_000, answered: 20_150, outcome: "deadRefreshToken" }));
    r.fake.deadRefreshTokenUses = 3;
    expect(analyse(r).deadTokens).toMatchObject({ excess: 1, excessUsers: [M] });
    (r.calls[1] as CallSeen).fault = "status503";
    expect(analyse(r).deadTokens).toMatchObject({ excess: 0, rejectionNotDelivered: 1 });
  });

  it("an OAuth2 user lost without a lost rotation, or a managed user lost, fails (and its dead token is then beyond the allowance)", () => {
    const r = clean();
    r.calls = r.calls.filter((c) => c.delivery !== "gone");
    r.rows[0] = row(M, "managed", { version: 2, refreshTokenLive: false });
    const rules = analyse(r).rules;
    expect(rules.filter((x) => !x.ok).map((x) => x.rule)).toEqual([
      "no managed user lost",
      "an OAuth2 user lost only where Cal.com's rotation never reached us",
      "no dead refresh token presented beyond one per lost rotation",
    ]);
  });

  it("a request-path wait counts against the rule only outside every window (a kill's window covers the users it was refreshing)", () => {
    const r = clean();
    const wait = (user: string, start: number): RequestEvent => ({
      start,
      end: start + 300,
      user,
      kind: "managed",
      moduleMs: 300,
      waitedOnRefresh: true,
      slow: false,
    });
    r.users.push({ userUlid: "01M8GRS6JT3J8CFTD161BGC2R9", kind: "managed", calUserId: 1003, ttlMs: 60_000 });
    r.rows.push(row("01M8GRS6JT3J8CFTD161BGC2R9", "managed"));
    (r.faults[0] as ExecutedFault).users = [O, "01M8GRS6JT3J8CFTD161BGC2R9"];
    r.traffic.notable = [wait("01M8GRS6JT3J8CFTD161BGC2R9", 40_000), wait("01M8GRS6JT3J8CFTD161BGC2R9", 90_000), wait(M, 40_000)];
    const a = analyse(r);
    expect(a.requests.violations.map((e) => [e.user, e.start])).toEqual([
      [M, 40_000],
      ["01M8GRS6JT3J8CFTD161BGC2R9", 90_000],
    ]);
    expect(a.rules[3]?.ok).toBe(false);
  });

  it("an injected failure answer opens a window for the user who received it, until their next stored pair + 2 s; nobody else's", () => {
    const r = clean();
    const X = "01M8GRS6JT3J8CFTD161BGC2R9";
    r.users.push({ userUlid: X, kind: "managed", calUserId: 1003, ttlMs: 60_000 });
    r.rows.push(row(X, "managed"));
    r.rows[0] = row(M, "managed", { version: 3 });
    r.calls.push(
      // M's refresh answered 503 by the injector (the answer reached the worker); the retry rotated and was stored at 55 s.
      call({ userUlid: M, arrived: 50_000, answered: 50_150, outcome: "other", fault: "status503" }),
      call({ userUlid: M, arrived: 54_850, answered: 55_000 }),
      // X's 500 never reached anyone (the caller was gone): no window.
      call({ userUlid: X, arrived: 50_000, answered: 50_150, outcome: "other", fault: "status500", delivery: "gone" }),
    );
    r.audits.push(audit(M, "FAILED_TRANSIENT", 50_160), audit(M, "REFRESHED", 55_010));
    r.fake.refreshes = 2;
    const fail = (user: string, start: number): RequestEvent => ({
      start,
      end: start + 3,
      user,
      kind: "managed",
      moduleMs: 3,
      waitedOnRefresh: false,
      failure: "calcom.transient",
      slow: false,
    });
    r.traffic.notable = [fail(M, 50_100), fail(M, 53_000), fail(M, 56_900), fail(M, 57_500), fail(X, 51_000)];
    const a = analyse(r);
    expect(a.rotations.unaccounted).toBe(0);
    expect(a.windows.filter((w) => w.kind === "failed-answer").map((w) => [[...(w.users ?? [])], w.start, w.end])).toEqual([
      [[M], 50_000, 57_010],
    ]);
    expect(a.requests.violations.map((e) => [e.user, e.start])).toEqual([
      [X, 51_000],
      [M, 57_500],
    ]);
    const row3 = a.requests.byWindow.find((w) => w.label.startsWith("injected failure answers"));
    expect(row3).toMatchObject({ span: "1 windows, longest 7.0 s" });
    expect(row3?.failed.get("calcom.transient")).toBe(3);
    expect(a.rules[3]?.ok).toBe(false);

    // Without a later stored pair the window runs to the end of traffic, and says so.
    r.audits = r.audits.filter((x) => !(x.userUlid === M && x.t === 55_010));
    const open = analyse(r);
    expect(open.windows.find((w) => w.kind === "failed-answer")).toMatchObject({ end: 120_000, unrepaired: true });
    expect(open.requests.byWindow.find((w) => w.label.startsWith("injected failure answers"))?.span).toBe(
      "1 windows (1 without a later stored pair: to the end of traffic)",
    );
    expect(open.requests.violations.map((e) => [e.user, e.start])).toEqual([[X, 51_000]]);
    expect(open.notes.join(" ")).toContain(
      `1 user(s) received an injected failure answer and never stored a pair afterwards, yet are not lost (${M})`,
    );
  });
});
