/**
 * Per-call step timing for breakdowns: wrap a port (store, Cal.com client, cipher) so every method
 * call adds its duration to the trace that was current when the call started. Calls must be
 * sequential for the attribution to be exact (one trace at a time); a non-awaited call (e.g. the
 * last-used touch) still lands in the trace of the call that fired it.
 */
import { performance } from "node:perf_hooks";

export class Trace {
  readonly totals = new Map<string, number>();
  readonly counts = new Map<string, number>();
  /** Each call's duration, in completion order. */
  readonly each = new Map<string, number[]>();
  add(label: string, ms: number): void {
    this.totals.set(label, (this.totals.get(label) ?? 0) + ms);
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    const list = this.each.get(label);
    if (list) list.push(ms);
    else this.each.set(label, [ms]);
  }
}

export class Tracer {
  current: Trace | null = null;
  /** Labels in the order they were first seen (call order of the first traced call). */
  readonly labels: string[] = [];

  begin(): Trace {
    this.current = new Trace();
    return this.current;
  }

  end(): void {
    this.current = null;
  }

  record(trace: Trace | null, label: string, ms: number): void {
    if (!trace) return;
    if (!this.labels.includes(label)) this.labels.push(label);
    trace.add(label, ms);
  }

  /** A copy of `obj` whose function properties are timed as `${prefix}.${name}` (sync or async). */
  wrap<T extends object>(obj: T, prefix: string): T {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(obj)) {
      if (typeof value !== "function") {
        out[name] = value;
        continue;
      }
      const fn = value as (...args: unknown[]) => unknown;
      const label = `${prefix}.${name}`;
      out[name] = (...args: unknown[]): unknown => {
        const trace = this.current;
        const t0 = performance.now();
        const stop = () => this.record(trace, label, performance.now() - t0);
        let result: unknown;
        try {
          result = fn.apply(obj, args);
        } catch (err) {
          stop();
          throw err;
        }
        if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
          return (result as Promise<unknown>).then(
            (v) => {
              stop();
              return v;
            },
            (err: unknown) => {
              stop();
              throw err;
            },
          );
        }
        stop();
        return result;
      };
    }
    return out as T;
  }
}
