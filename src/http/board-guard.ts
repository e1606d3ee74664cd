/**
 * Bull Board observes and retries; it writes nothing else (docs/architecture.md#invariant-8-rate-budget:
 * a queue-level rate limit, concurrency or pause set from the board would override the service's own;
 * added or edited jobs would carry data no producer of ours wrote). This is an allow-list on method and
 * route pattern: every read (GET/HEAD) passes, the writes listed below pass when their condition
 * holds, and every other request is refused with 403 before the board's handler runs, so a write route
 * a later board version adds is refused until someone lists it here on purpose.
 */
import type { Queue } from "bullmq";
import type { FastifyReply, FastifyRequest } from "fastify";
import { withTimeout } from "../core/timeout.js";
import type { Logger } from "../log/logger.js";

type Params = Record<string, string | undefined>;
/** The state of a job as BullMQ reports it, or null when the queue or the job does not exist. */
type JobState = (queueName: string | undefined, jobId: string | undefined) => Promise<string | null>;

interface AllowedWrite {
  method: "PUT";
  /** The route as @bull-board/api 9 registers it (dist/routes.js), relative to the board's base path. */
  route: string;
  /** A further condition on the request; a write whose condition fails is refused with `refusal`. */
  when?: (params: Params, jobState: JobState) => boolean | Promise<boolean>;
  refusal?: string;
}

export const BOARD_ALLOWED_WRITES: readonly AllowedWrite[] = [
  {
    method: "PUT",
    route: "/api/queues/:queueName/retry/:queueStatus",
    when: (p) => p.queueStatus === "failed",
    refusal: "only failed jobs can be retried",
  },
  {
    method: "PUT",
    route: "/api/queues/:queueName/:jobId/retry",
    when: async (p, state) => (await state(p.queueName, p.jobId)) === "failed",
    refusal: "only failed jobs can be retried",
  },
  { method: "PUT", route: "/api/queues/:queueName/promote" },
  {
    method: "PUT",
    route: "/api/queues/:queueName/:jobId/promote",
    when: async (p, state) => (await state(p.queueName, p.jobId)) === "delayed",
    refusal: "only delayed jobs can be promoted",
  },
];

const READ_ONLY = "this board can only read, retry failed jobs and promote delayed jobs";

/**
 * An onRequest hook for the board's scope (after basic auth). Lookups of a job's state are bounded by
 * `timeoutMs`; a timeout reaches the board's error handler (503).
 */
export function boardWriteGuard(opts: { basePath: string; queues: readonly Queue[]; logger: Logger; timeoutMs: number }) {
  const byName = new Map(opts.queues.map((q) => [q.name, q]));
  const allowed = new Map(BOARD_ALLOWED_WRITES.map((w) => [`${w.method} ${opts.basePath}${w.route}`, w]));
  const jobState: JobState = async (queueName, jobId) => {
    const queue = queueName === undefined ? undefined : byName.get(queueName);
    if (!queue || jobId === undefined) return null;
    const job = await withTimeout(queue.getJob(jobId), opts.timeoutMs, "board job lookup");
    return job ? withTimeout(job.getState(), opts.timeoutMs, "board job state") : null;
  };

  return async function guardBoardWrites(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.method === "GET" || request.method === "HEAD") return;
    const route = request.routeOptions.url ?? "";
    const rule = allowed.get(`${request.method} ${route}`);
    if (rule && (!rule.when || (await rule.when(request.params as Params, jobState)))) return;
    const message = rule?.refusal ?? READ_ONLY;
    opts.logger.warn({ method: request.method, route: route || "(no route)", reason: message }, "Bull Board write refused");
    await reply.code(403).send({ error: { key: "ERRORS.FORBIDDEN" }, message });
  };
}
