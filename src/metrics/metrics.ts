import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Queue } from "bullmq";
import type { AuditOutcome } from "../core/ports.js";
import type { RefreshTrigger } from "../core/types.js";
import type { OutcomeEvent } from "../refresh/types.js";

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
  /** Prometheus text; queue gauges are read from Redis now. */
  render(): Promise<string>;
}

export interface CreateMetricsOptions {
  /** Queues whose job counts are reported on each scrape as `cal_token_queue_jobs{queue,state}`. */
  queues?: readonly Queue[];
  /** Node process metrics (CPU, memory, event loop lag, …). Default true. */
  defaultMetrics?: boolean;
}

/**
 * Builds the service's metrics. Labels are bounded enums (outcome, trigger, queue, state): no user ids,
 * no tokens, no error messages (cardinality, and invariant 6).
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

  const queues = opts.queues ?? [];
  new Gauge({
    name: "cal_token_queue_jobs",
    help: "Jobs per BullMQ queue and state, read from Redis at scrape time",
    labelNames: ["queue", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      // One unreachable Redis must not fail the whole scrape: its series are simply absent, which
      // absent()/up-style alerts catch, while process metrics and counters still come through.
      await Promise.all(
        queues.map(async (queue) => {
          const counts = await queue.getJobCounts(...QUEUE_STATES).catch(() => null);
          if (!counts) return;
          for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
        }),
      );
    },
  });

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

/** Guards label cardinality even if a caller bypasses the types (e.g. a value read from the database). */
function knownOrOther(value: string, known: readonly string[]): string {
  return known.includes(value) ? value : "other";
}
