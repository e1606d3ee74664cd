import { timingSafeEqual, createHash } from "node:crypto";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import fastifyBasicAuth from "@fastify/basic-auth";
import type { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { BOARD_DATA_KEYS, BOARD_RETURN_VALUE_KEYS, pickShown, shownProgress } from "./board-redaction.js";

export interface BoardQueues {
  refresh: Queue;
  sweep: Queue;
  events: Queue;
}

export interface BoardCredentials {
  username: string;
  password: string;
}

export const BOARD_TITLE = "cal-token-worker";

/**
 * A BullMQ adapter that shows only allow-listed fields of job data, return values and scheduler
 * templates. The board's job list/detail go through `format()`; the schedulers page does not, so
 * templates are filtered here. (Failure reasons and stack traces are shown as stored: the code that
 * throws keeps secrets out of error messages, which the suite's secret scan checks.)
 */
class RedactingBullMQAdapter extends BullMQAdapter {
  constructor(
    queue: Queue,
    options: { readOnlyMode: boolean; description: string },
    private readonly dataKeys: readonly string[],
  ) {
    super(queue, { ...options, allowRetries: !options.readOnlyMode });
    this.setFormatter("data", (data: unknown) => pickShown(data, dataKeys));
    this.setFormatter("returnValue", formatReturnValue);
    this.setFormatter("progress", shownProgress);
  }

  override async getJobSchedulers(): ReturnType<BullMQAdapter["getJobSchedulers"]> {
    const schedulers = await super.getJobSchedulers();
    return schedulers.map((s) => (s.template ? { ...s, template: { ...s.template, data: pickShown(s.template.data, this.dataKeys) } } : s));
  }
}

function formatReturnValue(value: unknown): unknown {
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return value;
  return pickShown(value, BOARD_RETURN_VALUE_KEYS);
}

/**
 * Mounts Bull Board at `basePath` inside its own encapsulated plugin, so basic auth guards the board's
 * pages, assets and API, and nothing else on the server. Refresh and sweep are writable (ops retry and
 * promote jobs there); the events queue is read-only.
 */
export function registerBullBoard(
  app: FastifyInstance,
  opts: { queues: BoardQueues; basePath: string; credentials: BoardCredentials | null },
): void {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(opts.basePath);
  createBullBoard({
    queues: [
      new RedactingBullMQAdapter(
        opts.queues.refresh,
        { readOnlyMode: false, description: "Per-user token refresh jobs" },
        BOARD_DATA_KEYS.refresh,
      ),
      new RedactingBullMQAdapter(
        opts.queues.sweep,
        { readOnlyMode: false, description: "Due-token sweep (job scheduler)" },
        BOARD_DATA_KEYS.sweep,
      ),
      new RedactingBullMQAdapter(
        opts.queues.events,
        { readOnlyMode: true, description: "Webhook events to the web app" },
        BOARD_DATA_KEYS.events,
      ),
    ],
    // Two copies of @bull-board/api are installed (9.10.2 for us, 9.10.1 under @bull-board/fastify); their
    // IServerAdapter types differ only nominally (private members), the runtime contract is the same.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]["serverAdapter"],
    options: { uiConfig: { boardTitle: BOARD_TITLE, hideDocsLink: true } },
  });

  const credentials = opts.credentials;
  void app.register(async (scope) => {
    if (credentials) {
      await scope.register(fastifyBasicAuth, {
        validate: async (username, password) => {
          if (!credentialsMatch(credentials, username, password)) throw new Error("Unauthorized");
        },
        authenticate: { realm: BOARD_TITLE },
      });
      scope.addHook("onRequest", scope.basicAuth);
    }
    await scope.register(serverAdapter.registerPlugin(), { prefix: opts.basePath });
  });
}

/** Constant-time: both fields are always compared, on fixed-length digests (no length or prefix leak). */
export function credentialsMatch(expected: BoardCredentials, username: string, password: string): boolean {
  const userOk = timingSafeEqual(digest(expected.username), digest(username));
  const passOk = timingSafeEqual(digest(expected.password), digest(password));
  return userOk && passOk;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
