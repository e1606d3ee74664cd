/**
 * Fault switches for the token endpoints. The queue/persistent split lets a test say "the next refresh
 * dies after commit" without affecting the retry that follows.
 */
import type { Fault, FaultSwitches } from "./types.js";
import { FAULTS } from "./types.js";

/** Faults answered instead of processing: nothing is rotated. */
const BEFORE_COMMIT: ReadonlySet<Fault> = new Set(["status500", "status503", "html502", "hang", "rateLimit"]);

export function isBeforeCommit(fault: Fault): boolean {
  return BEFORE_COMMIT.has(fault);
}

export function isFault(value: unknown): value is Fault {
  return typeof value === "string" && (FAULTS as readonly string[]).includes(value);
}

export class FaultController implements FaultSwitches {
  latencyMs = 0;
  private queue: Fault[] = [];
  private persistent: Fault | null = null;

  next(fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.queue.push(fault);
  }

  always(fault: Fault | null): void {
    this.persistent = fault;
  }

  clear(): void {
    this.queue = [];
    this.persistent = null;
    this.latencyMs = 0;
  }

  /** The fault for the current token-endpoint call, consuming one queued fault if any. */
  take(): Fault | null {
    return this.queue.shift() ?? this.persistent;
  }
}
