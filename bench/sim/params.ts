/**
 * Every input of the capacity simulation, in one place. The activity pattern is synthetic: the figures
 * below are assumptions, stated so they can be argued with (and changed) rather than hidden in code.
 * Same seed + same parameters = the same population, the same sessions and the same requests for every
 * strategy (bench/sim/population.ts derives each user-day and each session from the seed alone).
 */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A user's activity segment: how likely they are to be active on a given local day. */
export interface Segment {
  name: string;
  /** Share of the population. */
  share: number;
  /** Probability of at least one session on a local weekday / weekend day. */
  pWeekday: number;
  pWeekend: number;
  /** Sessions on an active day: 1 + Poisson(extraSessions). */
  extraSessions: number;
  /** Last request before the simulation starts: now − uniform(min, max). */
  lastSeenAgoMs: [number, number];
  /** Last refresh (= refresh-token issue) before the simulation starts: now − uniform(min, max). */
  lastRefreshAgoMs: [number, number];
}

export interface Region {
  name: string;
  share: number;
  /** UTC offset in whole hours. */
  utcOffsetHours: number;
}

export interface TokenKindParams {
  /** Share of users of this kind. */
  share: number;
  accessTtlMs: number;
  /** Refresh-token lifetime; Infinity = not enforced (managed: Cal.com sends one year and does not check it). */
  refreshTtlMs: number;
}

export interface SimParams {
  seed: number;
  users: number;
  days: number;
  /** Days excluded from the per-minute and per-request figures (initial backlogs). Grants lost count the whole run. */
  warmupDays: number;
  /** Epoch ms of virtual time 0: a Monday, 00:00 UTC. */
  startMs: number;
  segments: Segment[];
  regions: Region[];
  /** Relative weight of a session starting in each local hour 0..23 (normalised). */
  localHourWeights: number[];
  /** Session length: log-normal with this median and sigma, capped. */
  sessionMedianMs: number;
  sessionSigma: number;
  sessionMaxMs: number;
  /** Mean gap between two request paths of one session (Poisson arrivals; the first one at the session start). */
  requestGapMs: number;
  kinds: { oauth2: TokenKindParams; managed: TokenKindParams };
  /** Cal.com: token calls per minute per OAuth client (hard; a call past it gets 429). */
  calcomPerMinute: number;
  /** Ours: CAL_REFRESH_RATE_PER_MINUTE (default 450); background stops a fifth short (src/fleet/call-budget.ts). */
  ourPerMinute: number;
  /** One token call's round trip: what a request path that refreshes inline waits. */
  callRoundTripMs: number;
  /** Worker throughput of one process (README: 186 refreshes/s at concurrency 10). */
  workerJobsPerSecond: number;
  /** Config defaults (src/config/schema.ts). */
  leadMs: number;
  jitterMs: number;
  onDemandBufferMs: number;
  minIntervalMs: number;
  sweepIntervalMs: number;
  /** Strategy c: refresh-on-read margin and the daily idle sweep (UTC hour, "not read in"). */
  readMarginMs: number;
  dailySweepHourUtc: number;
  dailySweepIdleMs: number;
  /** The refresh policy d′ (src/core/grant-policy.ts; the defaults of src/config/schema.ts). */
  keepFreshWindowMs: number;
  keepAliveLeadMs: number;
  keepAliveJitterMs: number;
  refreshTokenAtRiskMs: number;
  parkMs: number;
}

export function defaultParams(overrides: Partial<SimParams> = {}): SimParams {
  return {
    seed: 20261125,
    users: 100_000,
    days: 35,
    warmupDays: 3,
    startMs: Date.UTC(2026, 0, 5), // Monday 2026-01-05 00:00 UTC
    segments: [
      // ~15 % of users are daily actives on weekdays (the "minority of daily actives").
      {
        name: "daily",
        share: 0.15,
        pWeekday: 0.9,
        pWeekend: 0.3,
        extraSessions: 1.5,
        lastSeenAgoMs: [0, DAY],
        lastRefreshAgoMs: [0, DAY],
      },
      {
        name: "occasional",
        share: 0.25,
        pWeekday: 0.15,
        pWeekend: 0.05,
        extraSessions: 0.3,
        lastSeenAgoMs: [0, 14 * DAY],
        lastRefreshAgoMs: [0, 14 * DAY],
      },
      // The long idle tail: seen a couple of times a year. Their grants start alive (refresh tokens of
      // every age up to 28 days, as after an import), so the run shows who keeps them alive.
      {
        name: "idle",
        share: 0.6,
        pWeekday: 1 / 180,
        pWeekend: 1 / 180,
        extraSessions: 0,
        lastSeenAgoMs: [30 * DAY, 365 * DAY],
        lastRefreshAgoMs: [0, 28 * DAY],
      },
    ],
    regions: [
      { name: "Americas", share: 0.5, utcOffsetHours: -5 },
      { name: "Europe", share: 0.35, utcOffsetHours: 1 },
      { name: "Asia-Pacific", share: 0.15, utcOffsetHours: 8 },
    ],
    // Business-hours shape, local time: quiet night, morning ramp, a lunch dip, evening tail.
    localHourWeights: [0.4, 0.25, 0.2, 0.2, 0.3, 0.6, 1.5, 3, 5.5, 7.5, 8, 7.5, 6, 7, 7.5, 7, 6, 4.5, 3.5, 3, 2.5, 2, 1.2, 0.7],
    sessionMedianMs: 8 * MINUTE,
    sessionSigma: 0.9,
    sessionMaxMs: 3 * HOUR,
    requestGapMs: 90_000,
    kinds: {
      oauth2: { share: 0.8, accessTtlMs: 1800_000, refreshTtlMs: 30 * DAY },
      managed: { share: 0.2, accessTtlMs: 3600_000, refreshTtlMs: Number.POSITIVE_INFINITY },
    },
    calcomPerMinute: 500,
    ourPerMinute: 450,
    callRoundTripMs: 300,
    workerJobsPerSecond: 186,
    leadMs: 600_000,
    jitterMs: 300_000,
    onDemandBufferMs: 120_000,
    minIntervalMs: 30_000,
    sweepIntervalMs: 60_000,
    readMarginMs: 15 * MINUTE,
    dailySweepHourUtc: 3,
    dailySweepIdleMs: DAY,
    keepFreshWindowMs: 5 * MINUTE,
    keepAliveLeadMs: 3 * DAY,
    keepAliveJitterMs: 2 * DAY,
    refreshTokenAtRiskMs: DAY,
    parkMs: 30 * DAY,
    ...overrides,
  };
}
