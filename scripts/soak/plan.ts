/**
 * The fault schedule of a run, in milliseconds from the start of traffic: continuous 5xx and
 * drops-after-commit over the fault phase, a worker killed every ~killEverySeconds, and the four
 * one-off faults at fixed shares of the fault phase (the Postgres cut and the Cal.com outage overlap).
 * The quiet tail after the fault phase has no fault at all.
 */
import type { SoakOptions } from "./options.js";

export type ScheduledFault =
  | { kind: "worker-kill"; at: number }
  | { kind: "redis-restart"; at: number; downMs: number }
  | { kind: "postgres-cut"; at: number; durationMs: number }
  | { kind: "calcom-unreachable"; at: number; durationMs: number }
  | { kind: "rate-limit-storm"; at: number; durationMs: number; resetMs: number };

export interface FaultPlan {
  /** 5xx and drop-after-commit on this share of token calls, from `from` until `until`. */
  continuous: { from: number; until: number; errorRate: number; dropRate: number };
  /** Sorted by `at`. */
  faults: ScheduledFault[];
  /** When the fault phase ends and the quiet tail begins. */
  faultPhaseEnd: number;
  trafficMs: number;
}

export function buildPlan(o: SoakOptions, rand: () => number = Math.random): FaultPlan {
  const s = 1_000;
  const trafficMs = o.trafficSeconds * s;
  const faultPhaseEnd = trafficMs - o.tailSeconds * s;
  const warm = (o.short ? 5 : 15) * s;
  const span = faultPhaseEnd - warm;
  const at = (share: number) => Math.round(warm + share * span);
  const postgresAt = at(0.35);
  const faults: ScheduledFault[] = [
    { kind: "redis-restart", at: at(0.12), downMs: o.redisDownSeconds * s },
    { kind: "postgres-cut", at: postgresAt, durationMs: o.postgresCutSeconds * s },
    {
      kind: "calcom-unreachable",
      at: postgresAt + (o.postgresCutSeconds - o.outageOverlapSeconds) * s,
      durationMs: o.calcomOutageSeconds * s,
    },
    {
      kind: "rate-limit-storm",
      at: Math.min(at(0.75), faultPhaseEnd - o.rateLimitStormSeconds * s),
      durationMs: o.rateLimitStormSeconds * s,
      resetMs: o.rateLimitResetSeconds * s,
    },
  ];
  const every = o.killEverySeconds * s;
  for (let t = warm + every / 2; t < faultPhaseEnd; t += Math.round(every * (0.85 + 0.3 * rand()))) {
    faults.push({ kind: "worker-kill", at: Math.round(t) });
  }
  faults.sort((a, b) => a.at - b.at);
  return {
    continuous: { from: warm / 3, until: faultPhaseEnd, errorRate: o.errorRate, dropRate: o.dropRate },
    faults,
    faultPhaseEnd,
    trafficMs,
  };
}
