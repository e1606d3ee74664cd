/**
 * The closer stack of a composition root. Whoever creates a resource registers its closer right
 * there (`add`); an injected resource is not registered, so it is not closed. `closeAll` runs the
 * closers in reverse order of registration (last created, first closed), awaiting each one; a closer
 * that throws is logged with its name and the rest still run. Idempotent: every call returns the
 * same promise, which always resolves.
 */
import type { Logger } from "../log/logger.js";

export interface Releasers {
  /** Registers the closer of a resource just created (one added after closeAll started runs once closeAll is done). */
  add(name: string, close: () => unknown | Promise<unknown>): void;
  /** Runs every closer once, newest first; never rejects (failures are logged). */
  closeAll(): Promise<void>;
}

interface Step {
  name: string;
  close: () => unknown | Promise<unknown>;
}

export function createReleasers(logger?: Logger): Releasers {
  const steps: Step[] = [];
  let closing: Promise<void> | null = null;

  async function run(step: Step): Promise<void> {
    try {
      await step.close();
    } catch (err) {
      logger?.error({ err, step: step.name }, `closing ${step.name} failed; closing the rest`);
    }
  }

  return {
    add(name, close) {
      if (closing) {
        // Created while closing: nothing will ever close it later, so close it now.
        void closing.then(() => run({ name, close }));
        return;
      }
      steps.push({ name, close });
    },
    closeAll() {
      closing ??= (async () => {
        for (let step = steps.pop(); step; step = steps.pop()) await run(step);
      })();
      return closing;
    },
  };
}
