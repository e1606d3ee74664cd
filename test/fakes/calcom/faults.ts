/**
 * Fault switches for the token endpoints. The queue/persistent split lets a test say "the next refresh
 * dies after commit" without affecting the retry that follows; a storm is an outage with a start and
 * an end on the fake's clock.
 */
import type { Fault, FaultSwitches, RouteKey, StormOptions, StormStatus } from "./types.js";
import { FAULTS, STORM_STATUSES } from "./types.js";

/** Faults answered instead of processing: nothing is rotated. */
const BEFORE_COMMIT: ReadonlySet<Fault> = new Set(["status500", "status503", "html502", "hang", "rateLimit"]);

export function isBeforeCommit(fault: Fault): boolean {
  return BEFORE_COMMIT.has(fault);
}

export function isFault(value: unknown): value is Fault {
  return typeof value === "string" && (FAULTS as readonly string[]).includes(value);
}

/** Checks a storm request from the control route; returns an error text or null. */
export function stormError(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return "storm must be an object or null";
  const { durationMs, status, commitFraction } = value as Record<string, unknown>;
  if (typeof durationMs !== "number" || !(durationMs > 0)) return "storm.durationMs must be a positive number";
  if (status !== undefined && !(STORM_STATUSES as readonly unknown[]).includes(status)) return "storm.status must be 500, 502, 503 or 504";
  if (commitFraction !== undefined && (typeof commitFraction !== "number" || !(commitFraction >= 0 && commitFraction <= 1))) {
    return "storm.commitFraction must be a number from 0 to 1";
  }
  return null;
}

/** What the current token-endpoint call must do: a fault, a storm answer, or nothing special. */
export type Planned = { fault: Fault } | { storm: { status: StormStatus; afterCommit: boolean } } | null;

interface Storm {
  until: number;
  status: StormStatus;
  commitFraction: number;
  /** Even spreading of committed calls: one commits each time this passes 1. */
  credit: number;
}

export class FaultController implements FaultSwitches {
  latencyMs = 0;
  private queue: Fault[] = [];
  private routeQueues = new Map<RouteKey, Fault[]>();
  private persistent: Fault | null = null;
  private outage: Storm | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  next(fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.queue.push(fault);
  }

  nextOn(route: RouteKey, fault: Fault, times = 1): void {
    const queue = this.routeQueues.get(route) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.routeQueues.set(route, queue);
  }

  always(fault: Fault | null): void {
    this.persistent = fault;
  }

  storm(options: StormOptions | null): void {
    if (options === null) {
      this.outage = null;
      return;
    }
    const error = stormError(options);
    if (error) throw new TypeError(error);
    this.outage = {
      until: this.now() + options.durationMs,
      status: options.status ?? 503,
      commitFraction: options.commitFraction ?? 0,
      credit: 0,
    };
  }

  clear(): void {
    this.queue = [];
    this.routeQueues.clear();
    this.persistent = null;
    this.outage = null;
    this.latencyMs = 0;
  }

  /** The plan for the current token-endpoint call, consuming one queued fault if any (this route's first). */
  take(route?: RouteKey): Planned {
    const queued = (route === undefined ? undefined : this.routeQueues.get(route)?.shift()) ?? this.queue.shift();
    if (queued) return { fault: queued };
    const storm = this.outage;
    if (storm && this.now() < storm.until) {
      storm.credit += storm.commitFraction;
      const afterCommit = storm.credit >= 1 - 1e-9;
      if (afterCommit) storm.credit -= 1;
      return { storm: { status: storm.status, afterCommit } };
    }
    if (storm) this.outage = null;
    return this.persistent ? { fault: this.persistent } : null;
  }
}
