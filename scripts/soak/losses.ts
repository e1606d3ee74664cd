/**
 * What became of a token call's answer: a rotation Cal.com committed that never reached us (withheld by
 * a fault; undeliverable because the caller was gone: a killed worker, the Cal.com outage, a caller that
 * gave up), or one that reached a worker killed before it was stored; and whether a dead refresh token's
 * rejection reached its caller.
 */
import type { CallSeen, ExecutedFault } from "./soak.js";
import type { SoakUser } from "./traffic.js";

/** What became of a rotation Cal.com committed that did not end up stored. */
export type LossCause =
  | "dropped by the fault (never reached us)"
  | "undeliverable: in flight on a killed worker"
  | "undeliverable: in flight when Cal.com became unreachable"
  | "undeliverable: the caller had given up"
  | "reached a worker that was killed before storing it";

export const NEVER_REACHED: ReadonlySet<LossCause> = new Set([
  "dropped by the fault (never reached us)",
  "undeliverable: in flight on a killed worker",
  "undeliverable: in flight when Cal.com became unreachable",
  "undeliverable: the caller had given up",
]);

export interface Loss {
  call: CallSeen;
  cause: LossCause;
  kind: SoakUser["kind"] | "unknown";
}

/**
 * The kill that took the caller of `c` down while the call was open: the killed process held a connection
 * to Cal.com from the call's port (read from /proc before the kill), and the kill came after the call
 * arrived and before its connection closed. Without /proc, a kill that started while the call was open.
 */
function killOf(c: CallSeen, faults: ExecutedFault[]): ExecutedFault | undefined {
  const end = c.closed ?? c.answered;
  return faults.find((f) => {
    if (f.kind !== "worker-kill" || f.start < c.arrived - 50 || f.start > end + 50) return false;
    return f.calcomPorts === undefined || (c.port !== undefined && f.calcomPorts.includes(c.port));
  });
}

/**
 * Why a rotation's answer did not reach a process that stored it, or null when it did. `storedBy(c, until)`
 * says whether the user had a pair stored between the answer and `until` (or recovered from a held pair later).
 * `minWriteMs`: the p99 of the time workers of the run took from Cal.com's answer to the start of their
 * write; a worker killed sooner than that after the answer had not got to it yet, so an answer it never
 * stored counts as one that never reached us.
 */
export function lossOf(
  c: CallSeen,
  faults: ExecutedFault[],
  storedBy: (c: CallSeen, until: number) => boolean,
  minWriteMs = 1,
): LossCause | null {
  if (c.delivery === "withheld") return "dropped by the fault (never reached us)";
  const kill = killOf(c, faults);
  if (c.delivery === "gone") {
    if (kill) return "undeliverable: in flight on a killed worker";
    if (faults.some((f) => f.kind === "calcom-unreachable" && f.start <= c.answered && f.faultEnd >= c.arrived)) {
      return "undeliverable: in flight when Cal.com became unreachable";
    }
    return "undeliverable: the caller had given up";
  }
  if (c.delivery === "closedAfter" && kill) {
    if (storedBy(c, kill.start + 100)) return null;
    // Killed before the fake answered (the process was gone), or before the worker could get to it.
    if (kill.start < c.answered + minWriteMs) return "undeliverable: in flight on a killed worker";
    return "reached a worker that was killed before storing it";
  }
  return null;
}

/** A dead refresh token whose rejection the caller never acted on: a fault answered instead, or the caller died. */
export function rejectionLost(c: CallSeen, faults: ExecutedFault[]): boolean {
  return (
    c.fault !== undefined ||
    c.delivery === "gone" ||
    c.delivery === "withheld" ||
    (c.delivery === "closedAfter" && killOf(c, faults) !== undefined)
  );
}
