import type { JobsOptions, Queue } from "bullmq";
import type { Logger } from "../log/logger.js";
import { JOB_NAMES } from "../queue/names.js";
import type { EventStore } from "../store/event-store.js";
import type { DeliverEventJobData } from "./types.js";

export interface EventRelay {
  /** Moves every unrelayed outbox row into the events queue; returns how many it moved. */
  relayOnce(): Promise<number>;
  /** Fire-and-forget relayOnce (after a flip): errors are logged, the periodic relay catches up. */
  kick(): void;
  /** Periodic relay, the safety net for kicks that failed or processes that died before kicking. */
  start(intervalMs: number): void;
  /** Stops the timer and waits for a relay in progress. */
  close(): Promise<void>;
}

/** 12 attempts with exponential backoff from 2 s ≈ 2.3 hours of retries before an event is failed. */
export const DELIVER_JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: { age: 86_400, count: 10_000 },
  removeOnFail: { age: 604_800 },
} as const satisfies JobsOptions;

const BATCH = 100;
/** Bounds one relay run so a huge backlog cannot monopolise it; the next tick continues. */
const MAX_BATCHES_PER_RUN = 50;

/**
 * The outbox relay. Rows are added to the queue first and marked relayed after, so a crash in between
 * re-adds them on the next run; `jobId = event id` makes that re-add a no-op in BullMQ (while the job
 * is retained), and the receiver dedups on the idempotency key in any case. Relays in several
 * processes can overlap safely for the same reason.
 */
export function createEventRelay(deps: {
  eventStore: EventStore;
  queue: Queue<DeliverEventJobData>;
  logger: Logger;
  clock?: () => Date;
}): EventRelay {
  const { eventStore, queue, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  let running: Promise<number> | null = null;
  let again = false;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  async function drain(): Promise<number> {
    let moved = 0;
    for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
      const rows = await eventStore.unrelayed(BATCH);
      if (rows.length === 0) break;
      await queue.addBulk(
        rows.map((r) => ({ name: JOB_NAMES.deliver, data: { eventId: r.id }, opts: { ...DELIVER_JOB_OPTIONS, jobId: r.id } })),
      );
      await eventStore.markRelayed(
        rows.map((r) => r.id),
        clock(),
      );
      moved += rows.length;
      if (rows.length < BATCH) break;
    }
    return moved;
  }

  // One run at a time per process. A call that arrives mid-run gets the running promise and forces
  // one more pass, so rows it wrote after the current pass's read are still relayed before it resolves.
  function relayOnce(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        total += await drain();
      } while (again);
      if (total > 0) logger.debug({ relayed: total }, "events relayed to the queue");
      return total;
    })().finally(() => {
      running = null;
    });
    return running;
  }

  function kick(): void {
    relayOnce().catch((err: unknown) => logger.warn({ err }, "event relay failed; the periodic relay will retry"));
  }

  return {
    relayOnce,
    kick,
    start(intervalMs) {
      if (timer || closed) return;
      // setTimeout chain rather than setInterval: a slow run never overlaps the next tick.
      const tick = () => {
        timer = setTimeout(() => {
          relayOnce()
            .catch((err: unknown) => logger.warn({ err }, "periodic event relay failed"))
            .finally(() => {
              if (!closed) tick();
            });
        }, intervalMs);
        timer.unref();
      };
      tick();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
}
