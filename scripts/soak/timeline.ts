/**
 * Fault windows and the attribution of request-path events to them. A window runs from the moment a
 * fault starts to the end of its recovery allowance (how long its effects may last by design); a
 * window may be scoped to users (the users whose job was running on a killed worker, the user whose
 * rotation was lost, the user who received an injected failure answer). Times are milliseconds from the start of traffic.
 */

export type WindowKind =
  | "worker-kill"
  | "redis-restart"
  | "postgres-cut"
  | "calcom-unreachable"
  | "rate-limit-storm"
  | "lost-rotation"
  | "failed-answer";

export interface FaultWindow {
  id: number;
  kind: WindowKind;
  /** One line for the timeline. */
  label: string;
  start: number;
  /** When the fault itself ended (restore, restart, storm over). */
  faultEnd: number;
  /** faultEnd plus the recovery allowance. */
  end: number;
  /** Only these users' events fall in the window; undefined = everyone's. */
  users?: ReadonlySet<string>;
  /** A per-user window that found no later stored pair of its user, so it runs to the end of traffic. */
  unrepaired?: boolean;
}

export interface TimedEvent {
  start: number;
  end: number;
  user: string;
}

export class Timeline {
  private readonly global: FaultWindow[] = [];
  private readonly scoped: FaultWindow[] = [];
  private readonly byUser = new Map<string, FaultWindow[]>();
  private nextId = 1;

  add(w: Omit<FaultWindow, "id">): FaultWindow {
    const window: FaultWindow = { ...w, id: this.nextId++ };
    if (window.users === undefined) this.global.push(window);
    else {
      this.scoped.push(window);
      for (const u of window.users) {
        const list = this.byUser.get(u) ?? [];
        list.push(window);
        this.byUser.set(u, list);
      }
    }
    return window;
  }

  /** Every window, global and scoped, sorted by start. */
  all(): FaultWindow[] {
    return [...this.global, ...this.scoped].sort((a, b) => a.start - b.start || a.id - b.id);
  }

  /** The windows an event overlaps (its own user's scoped windows and every global one). */
  windowsOf(e: TimedEvent): FaultWindow[] {
    const overlaps = (w: FaultWindow) => e.start <= w.end && e.end >= w.start;
    return [...this.global.filter(overlaps), ...(this.byUser.get(e.user) ?? []).filter(overlaps)];
  }
}

/** "t+12.3s" */
export function at(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
