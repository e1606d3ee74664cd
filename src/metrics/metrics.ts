import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Queue } from "bullmq";
import type { AuditOutcome } from "../core/ports.js";
import type { RefreshTrigger } from "../core/types.js";
import type { OutcomeEvent } from "../refresh/types.js";
import type { TokenStats } from "../store/token-stats.js";
import { cachedFor } from "./ttl-cache.js";
import type { FleetState } from "../fleet/fleet-state.js";
import { registerFleetStateGauges } from "./fleet-gauges.js";

export const OUTCOMES = [
  "REFRESHED",
  "FORCE_REFRESHED",
  "FAILED_TRANSIENT",
  "RECONNECT_REQUIRED",
  "RECOVERED",
  "CONFIG_ERROR",
] as const satisfies readonly AuditOutcome[];

export const TRIGGERS = ["on_demand", "api_expired", "worker", "cli", "manual"] as const satisfies readonly RefreshTrigger[];

/** The job states reported per queue (BullMQ v6 has no `paused` state: a paused queue's jobs count as waiting). */
export const QUEUE_STATES = ["waiting", "prioritized", "active", "delayed", "completed", "failed", "waiting-children"] as const;

/** Refresh calls are one HTTP round trip plus a CAS write; buckets span a fast path to a slow timeout. */
const DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export interface Metrics {
  /** This process's registry (never prom-client's global one, so several instances can coexist in tests). */
  readonly registry: Registry;
  /** Content type of `render()`'s output (Prometheus text exposition format). */
  readonly contentType: string;
  /** Counts one refresh outcome and observes its duration. Labels: outcome and trigger only, never the user. */
  recordOutcome(event: OutcomeEvent): void;
  /**
   * Prometheus text; queue gauges are read from Redis now, fleet gauges from Postgres at most once per
   * `tokenStatsTtlMs`. Rejects when Redis or Postgres cannot be read (the caller answers 503).
   */
  render(): Promise<string>;
}

export interface CreateMetricsOptions {
  /** Queues whose job counts are reported on each scrape as `cal_token_queue_jobs{queue,state}`. */
  queues?: readonly Queue[];
  /** Node process metrics (CPU, memory, event loop lag, …). Default true. */
  defaultMetrics?: boolean;
  /**
   * Fleet-wide figures read from Postgres at scrape time (users by status, overdue refreshes, recent
   * outcomes from the audit table). This is how the web process reports what worker dynos did: they
   * have no HTTP port, but every outcome they produce is an audit row.
   */
  tokenStats?: () => Promise<TokenStats>;
  /** Fleet-wide state from Redis (breaker, held pairs, quarantine), read through the same kind of cache. */
  fleetState?: () => Promise<FleetState>;
  /**
   * How long one read of `tokenStats` serves every scrape (default 20 s): its queries count rows, so
   * their cost must not grow with the scrape rate or the number of scrapers.
   */
  tokenStatsTtlMs?: number;
  /** Milliseconds clock for the cache above (tests move it). */
  now?: () => number;
}

export const TOKEN_STATS_TTL_MS = 20_000;
/** Redis state is cheap to read and worth seeing quickly (a suspended fleet). */
export const FLEET_STATE_TTL_MS = 5_000;

/**
 * Builds the service's metrics. Labels are bounded enums (outcome, trigger, queue, state): no user ids,
 * no tokens, no error messages (cardinality, and docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 */
export function createMetrics(opts: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const outcomes = new Counter({
    name: "cal_token_refresh_outcomes_total",
    help: "Refresh attempt outcomes, by outcome and by what triggered the attempt",
    labelNames: ["outcome", "trigger"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "cal_token_refresh_duration_seconds",
    help: "Duration of refresh attempts, by outcome",
    labelNames: ["outcome"] as const,
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
  });
  // Every series exists from the start, so rate() and absent-series alerts work before the first event.
  for (const outcome of OUTCOMES) for (const trigger of TRIGGERS) outcomes.inc({ outcome, trigger }, 0);

  registerQueueGauge(registry, opts.queues ?? []);
  if (opts.tokenStats) {
    // One read per TTL, shared by the three gauges and by every scrape meanwhile; a failed read fails
    // the scrapes of its TTL too (the database is not asked again sooner).
    registerFleetGauges(registry, cachedFor(opts.tokenStats, opts.tokenStatsTtlMs ?? TOKEN_STATS_TTL_MS, opts.now));
  }
  if (opts.fleetState) registerFleetStateGauges(registry, cachedFor(opts.fleetState, FLEET_STATE_TTL_MS, opts.now));

  return {
    registry,
    contentType: registry.contentType,
    recordOutcome(event) {
      const outcome = knownOrOther(event.outcome, OUTCOMES);
      outcomes.inc({ outcome, trigger: knownOrOther(event.trigger, TRIGGERS) });
      if (Number.isFinite(event.durationMs) && event.durationMs >= 0) duration.observe({ outcome }, event.durationMs / 1000);
    },
    render: () => registry.metrics(),
  };
}

function registerQueueGauge(registry: Registry, queues: readonly Queue[]): void {
  new Gauge({
    name: "cal_token_queue_jobs",
    help: "Jobs per BullMQ queue and state, read from Redis at scrape time",
    labelNames: ["queue", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      // An unreachable Redis fails the scrape (503, `up == 0`) rather than serving a page without
      // queue series that looks healthy.
      const all = await Promise.all(queues.map(async (queue) => ({ queue, counts: await queue.getJobCounts(...QUEUE_STATES) })));
      for (const { queue, counts } of all) for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
    },
  });
}

/** Fleet-wide gauges from Postgres; `stats` is the cached read. */
function registerFleetGauges(registry: Registry, stats: () => Promise<TokenStats>): void {
  new Gauge({
    name: "cal_token_users",
    help: "Users with stored Cal.com tokens, by status",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await stats()).byStatus) this.set({ status: r.status }, r.count);
    },
  });
  new Gauge({
    name: "cal_token_refresh_overdue",
    help: "ACTIVE users whose scheduled refresh is more than a minute overdue (worker behind or down)",
    registers: [registry],
    async collect() {
      this.set((await stats()).overdue);
    },
  });
  new Gauge({
    name: "cal_token_refresh_token_at_risk",
    help: "ACTIVE OAuth2 users whose refresh token expires within REFRESH_TOKEN_AT_RISK_SECONDS (or has expired): the keep-alive refresh has not got through; the grant is lost at expiry",
    registers: [registry],
    async collect() {
      this.set((await stats()).refreshTokenAtRisk);
    },
  });
  new Gauge({
    name: "cal_token_expiry_adjusted_recent",
    help: "Refreshes in the last 5 minutes whose access-token expiry Cal.com sent in another form (converted) or not at all (assumed)",
    labelNames: ["how"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const notes = (await stats()).recentExpiryNotes;
      this.set({ how: "assumed" }, notes.assumed);
      this.set({ how: "converted" }, notes.converted);
    },
  });
  new Gauge({
    name: "cal_token_refresh_outcomes_recent",
    help: "Refresh outcomes recorded by any process in the last 5 minutes, by outcome and trigger",
    labelNames: ["outcome", "trigger"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await stats()).recentOutcomes) {
        this.set({ outcome: knownOrOther(r.outcome, OUTCOMES), trigger: knownOrOther(r.trigger, TRIGGERS) }, r.count);
      }
    },
  });
}

/** Guards label cardinality even if a caller bypasses the types (e.g. a value read from the database). */
function knownOrOther(value: string, known: readonly string[]): string {
  return known.includes(value) ? value : "other";
}
